//! `rblwatch man`: the manual pages, generated from the command line itself
//! (clap_mangen), so they cannot drift from `--help`. The systemd unit's
//! `Documentation=man:rblwatch(8)` points at the page the install step writes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory};

/// Arguments of `rblwatch man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write rblwatch.8 and one page per subcommand (rblwatch-check.8, ...) into this
    /// directory, e.g. /usr/local/share/man/man8. Without it, rblwatch.8 goes to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Sections of rblwatch.8 that `--help` has no place for.
fn extra_sections(subcommands: &[String]) -> clap_mangen::roff::Roff {
    use clap_mangen::roff::{bold, italic, roman, Roff};
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    r.text([roman(
        "0 on success; 1 on an error, or from check when something is listed or could not be checked; \
         2 on a usage error. check --nagios exits as a monitoring plugin: 0 OK, 1 WARNING, 2 CRITICAL, \
         3 UNKNOWN (argument errors included), with -w/-c as plugin threshold ranges.",
    )]);
    r.control("SH", ["FILES"]);
    r.control("TP", []);
    r.text([bold("/etc/rblwatch/rblwatch.toml")]);
    r.text([roman(
        "The configuration (see rblwatch.example.toml); ./rblwatch.toml when -C is not given.",
    )]);
    r.control("TP", []);
    r.text([bold("/var/lib/rblwatch")]);
    r.text([roman(
        "The daemon's state directory (systemd StateDirectory=): the SQLite database.",
    )]);
    r.control("TP", []);
    r.text([bold("/etc/systemd/system/rblwatch.service")]);
    r.text([roman(
        "The hardened unit from contrib/; the drop-in rblwatch.service.d/remediation.conf relaxes it for hooks that change Postfix.",
    )]);
    r.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<clap_mangen::roff::Inline> = Vec::new();
    for (i, s) in subcommands.iter().enumerate() {
        if i > 0 {
            refs.push(roman(", "));
        }
        refs.push(bold(s.clone()));
        refs.push(roman("(8)"));
    }
    refs.push(roman(", "));
    refs.push(bold("systemd.exec"));
    refs.push(roman("(5), "));
    refs.push(italic("docs/migrating.md"));
    refs.push(roman(" (from check_rbl and dnsbl_exporter)."));
    r.text(refs);
    r
}

/// rblwatch.8: clap's sections, then the extra ones.
fn main_page(cmd: &clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| {
            s.get_display_name()
                .unwrap_or_else(|| s.get_name())
                .to_string()
        })
        .collect();
    let man = clap_mangen::Man::new(cmd.clone()).section("8");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    extra_sections(&subs).to_writer(out)?;
    man.render_version_section(out)
}

/// One page per subcommand, nested ones too (rblwatch-config-check.8).
fn sub_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        sub_pages(sub, dir, written)?;
        let man = clap_mangen::Man::new(sub.clone()).section("8");
        let path = man
            .generate_to(dir)
            .with_context(|| format!("writing a manual page into {}", dir.display()))?;
        written.push(path);
    }
    Ok(())
}

/// Runs the command.
pub(super) fn run(a: ManArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    // sets each subcommand's display name ("rblwatch-check")
    cmd.build();
    let Some(dir) = a.dir else {
        let mut out = std::io::stdout().lock();
        main_page(&cmd, &mut out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let main = dir.join("rblwatch.8");
    let mut f =
        std::fs::File::create(&main).with_context(|| format!("writing {}", main.display()))?;
    main_page(&cmd, &mut f)?;
    f.flush()?;
    let mut written = vec![main];
    sub_pages(&cmd, &dir, &mut written)?;
    for p in &written {
        println!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
