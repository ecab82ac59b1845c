//! Range targets checked as wholes by one long-lived daemon: a mirrored list
//! intersects a /20 and an IPv6 /40 (the listed sub-ranges on the page and in
//! the API, gone at the next sweep once the mirror drops them), and a DNS list
//! asks an IPv6 /48 as the /64 a DMARC report shows sending plus a sample.

use std::path::Path;
use std::time::Duration;

use crate::delist::http;
use crate::feeds::{drop_mail, gz, mail, make_maildir};
use crate::util::{
    fixtures, free_tcp_port, http_get, http_json, rblwatch, stderr, stdout, wait_for, Daemon,
    Rbldnsd,
};

const V4: &str = ":127.0.0.2:Listed $\n127.0.0.2\n198.51.100.0/24 :4:net $\n!198.51.100.77\n198.51.104.0/22 :3:block $\n203.0.113.0/24\n";
const V6: &str =
    ":127.0.0.3:v6 $\n2001:db8:1200::/48\n!2001:db8:1200:5::/64\n2001:db8:12f0::/44 :5:other $\n";

fn aged(p: &Path, content: &str) {
    std::fs::write(p, content).unwrap();
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(30))
        .unwrap();
}

/// A DMARC report (yesterday) naming `ip` as sending for example.com.
fn report_for(ip: &str) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let begin = now / 86_400 * 86_400 - 86_400;
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata><org_name>reporter.test</org_name><email>dmarc@reporter.test</email>
    <report_id>prefix-{begin}</report_id><date_range><begin>{begin}</begin><end>{}</end></date_range></report_metadata>
  <policy_published><domain>example.com</domain><p>none</p></policy_published>
  <record>
    <row><source_ip>{ip}</source_ip><count>25</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><dkim><domain>example.com</domain><result>pass</result></dkim><spf><domain>example.com</domain><result>pass</result></spf></auth_results>
  </record>
</feedback>
"#,
        begin + 86_399
    );
    mail(
        "dmarc@reporter.test",
        "application/gzip",
        &format!(
            "reporter.test!example.com!{begin}!{}.xml.gz",
            begin + 86_399
        ),
        &gz(xml.as_bytes()),
    )
}

fn list_of<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["list"] == id)
        .unwrap_or_else(|| panic!("{id} in {v:#}"))
}

fn parts(v: &serde_json::Value, id: &str) -> Vec<String> {
    list_of(v, id)["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["listed"] == true)
        .map(|p| p["range"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn story_ranges_are_intersected_with_a_mirror_and_prefixes_asked_as_their_sending_64s() {
    let dir = tempfile::tempdir().unwrap();
    // the DNS list: rbldnsd lists the /64 the DMARC report shows sending
    let bl6 = std::fs::read_to_string(fixtures().join("zones/bl6.test.ip6trie")).unwrap()
        + "2001:db8:5500:7::/64 :127.0.0.4:sender listed $\n";
    let rbl = Rbldnsd::start_with(
        &[("bl6.ip6trie".into(), bl6)],
        &["bl6.test:ip6trie:bl6.ip6trie".into()],
    );
    // the mirrored list: rbldnsd-format files in a directory
    let data = dir.path().join("zen");
    std::fs::create_dir(&data).unwrap();
    aged(&data.join("zen.ip4set"), V4);
    aged(&data.join("zen6.ip6trie"), V6);
    let lists = dir.path().join("lists");
    std::fs::create_dir(&lists).unwrap();
    std::fs::write(
        lists.join("own.toml"),
        "[[list]]\nid = \"own-mirror\"\nzone = \"mirror.test\"\nkind = \"ip\"\ntest_points = { listed = [\"127.0.0.2\"], not_listed = [\"127.0.0.1\"] }\nreturns = [{ code = \"127.0.0.2-127.0.0.20\", meaning = \"listed\" }]\n",
    )
    .unwrap();
    let maildir = make_maildir(&dir.path().join("Maildir"));
    // the mail server's log: a receiver's refusal will cite an address in a listed part
    let maillog = dir.path().join("maillog");
    std::fs::write(&maillog, "").unwrap();
    let port = free_tcp_port();
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[resolver]
nameservers = ["{rbl}"]
timeout = "400ms"
retries = 0

[lists]
dirs = [{fix:?}, {lists:?}]
use = ["own-mirror", "bl6-test"]

[lists.override.own-mirror]
mirror = {data:?}
max_age = "1h"

[[targets]]
target = "198.51.96.0/20"
label = "hosting /20"

[[targets]]
target = "198.51.100.7"
label = "mx in the /20"

[[targets]]
target = "2001:db8:1200::/40"

[[targets]]
target = "2001:db8:5500::/48"
label = "customers"

[daemon]
database = "rblwatch.db"
sweep = "2s"
health = "1h"
confirm_listed = 1
confirm_clear = 1
prefix_sample = 4

[[feeds]]
kind = "dmarc"
maildir = {maildir:?}
interval = "1s"

[[sources]]
name = "mxlog"
kind = "postfix_log"
path = {maillog:?}
interval = "1s"

[impact]
window = "1h"
threshold = 0

[web]
listen = "127.0.0.1:{port}"
"#,
            maillog = maillog.display().to_string(),
            rbl = rbl.addr(),
            fix = fixtures().join("lists.d").display().to_string(),
            lists = lists.display().to_string(),
            data = data.display().to_string(),
            maildir = maildir.display().to_string(),
        ),
    )
    .unwrap();
    drop_mail(&maildir, "1.reporter", &report_for("2001:db8:5500:7::25"));
    let d = Daemon::start(&cfg);

    // the /20 by intersection: every listed part, the exclusion cut out
    let v = wait_for("the /20's listed parts", Duration::from_secs(30), || {
        let (s, b) = http_get(port, "/api/v1/targets/198.51.96.0/20");
        let v: serde_json::Value = serde_json::from_str(&b).ok()?;
        (s == 200 && parts(&v, "own-mirror").len() == 3).then_some(v)
    });
    assert_eq!(
        parts(&v, "own-mirror"),
        [
            "198.51.100.0-198.51.100.76",
            "198.51.100.78-198.51.100.255",
            "198.51.104.0/22"
        ],
        "{v:#}\n{}",
        d.log()
    );
    assert_eq!(v["listed"], true);
    assert_eq!(v["label"], "hosting /20");
    assert_eq!(list_of(&v, "own-mirror")["how"], "intersection");
    let p22 = list_of(&v, "own-mirror")["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["range"] == "198.51.104.0/22")
        .unwrap()
        .clone();
    assert_eq!(p22["codes"][0], "127.0.0.3", "{p22}");
    assert_eq!(p22["txt"][0], "block 198.51.104.0", "{p22}");
    // the same through the target page's address form and the HTML page
    let (s, page) = http_get(port, "/target/198.51.96.0/20");
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("198.51.100.78-198.51.100.255") && page.contains("by intersection"),
        "{page}"
    );
    let (s, _) = http_get(port, "/api/v1/targets/198.51.96.0%2F20");
    assert_eq!(s, 200);
    // a part's own address shows its range
    let (s, page) = http_get(port, "/target/198.51.104.0/22");
    assert_eq!(s, 200);
    assert!(page.contains("<h1>198.51.96.0&#x2f;20"), "{page}");

    // an address in it reads listed as part of its part, never clear
    let a = http_json(port, "/api/v1/targets/198.51.104.9");
    let row = a["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["list"] == "own-mirror")
        .unwrap()
        .clone();
    assert_eq!(row["listed"], true, "{a:#}");
    assert_eq!(row["listing"]["part"], "198.51.104.0/22", "{a:#}");

    // the IPv6 /40 by intersection
    let v6 = http_json(port, "/api/v1/targets/2001:db8:1200::/40");
    assert_eq!(
        parts(&v6, "own-mirror"),
        [
            "2001:db8:1200::-2001:db8:1200:4:ffff:ffff:ffff:ffff",
            "2001:db8:1200:6::-2001:db8:1200:ffff:ffff:ffff:ffff:ffff",
            "2001:db8:12f0::/44"
        ],
        "{v6:#}"
    );

    // counted in the verdict, and the events name the part
    let status = http_json(port, "/api/v1/status");
    assert!(
        status["listings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["target"] == "198.51.104.0/22"),
        "{status:#}"
    );
    assert!(
        status["verdict"]["kind"]
            .as_str()
            .unwrap()
            .starts_with("listed"),
        "{:#}",
        status["verdict"]
    );
    let ev = http_json(port, "/api/v1/events?per_page=200");
    assert!(
        ev.to_string().contains("\"target\":\"198.51.104.0/22\""),
        "{ev:#}"
    );
    // a receiver refuses mail citing an address inside the listed /22: the
    // listing is rejecting, and the verdict says so
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&maillog)
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        b"Dec  6 10:00:08 mx1 postfix/smtp[2108]: AE1F2A3B4C: to=<list@lists.example.org>, relay=lists.example.org[203.0.113.51]:25, delay=0.4, delays=0.01/0/0.2/0.19, dsn=5.7.1, status=bounced (host lists.example.org[203.0.113.51] said: 554 5.7.1 Service unavailable; Client host [198.51.104.7] blocked using mirror.test (in reply to RCPT TO command))\n",
    )
    .unwrap();
    drop(f);
    let status = wait_for("listed and rejecting", Duration::from_secs(30), || {
        let s = http_json(port, "/api/v1/status");
        (s["verdict"]["kind"] == "listed_rejecting").then_some(s)
    });
    assert!(
        status["verdict"]["detail"]
            .as_str()
            .unwrap()
            .contains("198.51.104.0/22"),
        "{:#}",
        status["verdict"]
    );
    // a listed part can be asked to be delisted: through the API (the
    // re-check intersects the range with the mirror again: the mirror's zone
    // is served by no DNS server, so a query would not count)
    let base = format!("http://127.0.0.1:{port}");
    let j = serde_json::json!({"target": "198.51.104.0/22", "list": "own-mirror", "by": "carol", "note": "customer cleaned up"});
    let (s, _, body) = http(
        "POST",
        &format!("{base}/api/v1/delistings"),
        None,
        Some(j),
        None,
    );
    assert_eq!(s, 201, "{body}\n{}", d.log());
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        created["request"]["target"], "198.51.104.0/22",
        "{created:#}"
    );
    let line = |needle: &str| {
        wait_for(needle, Duration::from_secs(20), || {
            d.log()
                .lines()
                .find(|l| l.contains(needle) && l.contains("own-mirror"))
                .map(str::to_string)
        })
    };
    let l = line("pair re-checked target=198.51.104.0/22 ");
    // (the mirror's zone is served nowhere: an answer that counted came from the mirror)
    assert!(
        ["answer=\"listed\"", "answer=listed"]
            .iter()
            .any(|a| l.contains(a)),
        "{l}"
    );
    // a part that is not listed has nothing to delist; a range that is not configured is not found
    for (t, want) in [
        ("198.51.100.0/24", 409),
        ("10.0.0.0/24", 404),
        ("198.51.104.1/22", 404),
    ] {
        let j = serde_json::json!({"target": t, "list": "own-mirror"});
        let (s, _, body) = http(
            "POST",
            &format!("{base}/api/v1/delistings"),
            None,
            Some(j),
            None,
        );
        assert_eq!(s, want, "{t}: {body}");
    }
    // the range page shows the request and the part's own button
    let (_, page) = http_get(port, "/target/198.51.96.0/20");
    assert!(
        page.contains("name=\"target\" value=\"198.51.104.0&#x2f;22\"")
            && page.contains("<b>carol</b> (customer cleaned up)"),
        "{page}"
    );
    // an address's page offers the button for the part it lies in
    let (_, page) = http_get(port, "/target/198.51.104.9");
    assert!(
        page.contains("name=\"target\" value=\"198.51.104.0&#x2f;22\"")
            && page.contains("<b>carol</b>"),
        "{page}"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let f = [
        ("csrf", csrf.as_str()),
        ("target", "198.51.104.0/22"),
        ("list", "own-mirror"),
        ("by", "dave"),
    ];
    let (s, loc, body) = http(
        "POST",
        &format!("{base}/delist"),
        Some(&f),
        None,
        Some(&base),
    );
    assert_eq!(
        (s, loc.as_str()),
        (303, "/target/198.51.104.0%2F22#list-own-mirror"),
        "{body}"
    );
    let (s, page) = http_get(port, &loc);
    assert!(s == 200 && page.contains("<b>dave</b>"), "{page}");
    // and `rblwatch delist` names a part as the page shows it
    let cfg_s = cfg.to_str().unwrap();
    let o = rblwatch(&[
        "delist",
        "198.51.100.0-198.51.100.76",
        "own-mirror",
        "--by",
        "erin",
        "-C",
        cfg_s,
    ]);
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    assert!(
        stdout(&o).contains("delisting of 198.51.100.0-198.51.100.76 from own-mirror recorded"),
        "{}",
        stdout(&o)
    );
    line("pair re-checked target=198.51.100.0-198.51.100.76 ");
    let o = rblwatch(&["delist", "198.51.100.0/24", "own-mirror", "-C", cfg_s]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let q = http_json(port, "/api/v1/delistings?target=198.51.104.0/22");
    assert_eq!(q["total"], 2, "{q:#}");

    // nothing enumerated: a sweep is a handful of pairs, not 4,096 + 2^88
    let pairs = status["last_sweep"]["counts"]["pairs"].as_i64().unwrap();
    assert!(pairs < 100, "{pairs} pairs in a sweep");

    // the /48 through DNS: the sending /64 from the DMARC report, plus 4 sampled
    let v = wait_for(
        "the /48's sending /64 asked",
        Duration::from_secs(30),
        || {
            let v = http_json(port, "/api/v1/targets/2001:db8:5500::/48");
            let asked = list_of(&v, "bl6-test")["asked"].as_array()?.clone();
            asked
                .iter()
                .any(|a| a["why"] == "known_sender")
                .then_some(v)
        },
    );
    let bl6 = list_of(&v, "bl6-test");
    assert_eq!(bl6["how"], "dns");
    let asked = bl6["asked"].as_array().unwrap();
    assert_eq!(asked.len(), 5, "{v:#}");
    assert_eq!(asked[0]["net"], "2001:db8:5500:7::/64");
    assert_eq!(asked[0]["address"], "2001:db8:5500:7::25");
    assert_eq!(asked[0]["verdict"], "listed");
    assert!(
        asked[1..].iter().all(|a| a["why"] == "sample"
            && a["net"].as_str().unwrap().starts_with("2001:db8:5500:")
            && a["net"] != "2001:db8:5500:7::/64"),
        "{v:#}"
    );
    let got = wait_for("the sending /64 listed", Duration::from_secs(10), || {
        let v = http_json(port, "/api/v1/targets/2001:db8:5500::/48");
        let p = parts(&v, "bl6-test");
        (!p.is_empty()).then_some(p)
    });
    assert_eq!(got, ["2001:db8:5500:7::/64"]);
    // its delisting request's re-check asks the address the sweep asked for the /64
    let j = serde_json::json!({"target": "2001:db8:5500:7::/64", "list": "bl6-test"});
    let (s, _, body) = http(
        "POST",
        &format!("{base}/api/v1/delistings"),
        None,
        Some(j),
        None,
    );
    assert_eq!(s, 201, "{body}");
    let l = wait_for("the /64 re-checked", Duration::from_secs(20), || {
        d.log()
            .lines()
            .find(|l| l.contains("pair re-checked target=2001:db8:5500:7::/64 "))
            .map(str::to_string)
    });
    assert!(
        ["answer=\"listed\"", "answer=listed"]
            .iter()
            .any(|a| l.contains(a)),
        "{l}"
    );
    let t = http_json(port, "/api/v1/targets?page=9&per_page=500");
    let entry = t["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"] == "2001:db8:5500::/48")
        .unwrap_or_else(|| panic!("the prefix is listed among the targets: {t:#}"))
        .clone();
    assert_eq!(entry["listings"], 1, "{entry}");
    assert_eq!(entry["label"], "customers");
    let (_, page) = http_get(port, "/target/2001:db8:5500::/48");
    assert!(
        page.contains("2001:db8:5500:7::25")
            && page.contains("known sender")
            && page.contains("sample"),
        "{page}"
    );

    // the mirror drops the /22: the next sweep shows it gone, and says so
    std::fs::write(
        data.join("zen.ip4set"),
        V4.replace("198.51.104.0/22 :3:block $\n", ""),
    )
    .unwrap();
    let v = wait_for("the /22 gone", Duration::from_secs(30), || {
        let v = http_json(port, "/api/v1/targets/198.51.96.0/20");
        (parts(&v, "own-mirror").len() == 2).then_some(v)
    });
    assert_eq!(
        parts(&v, "own-mirror"),
        ["198.51.100.0-198.51.100.76", "198.51.100.78-198.51.100.255"],
        "{v:#}"
    );
    let ev = http_json(port, "/api/v1/events?per_page=200");
    assert!(
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["target"] == "198.51.104.0/22" && e["kind"] == "delisted"),
        "{ev:#}"
    );
    // the delisting requested for it ends with the listing: its time to delist is known
    let q = wait_for(
        "the part's request delisted",
        Duration::from_secs(10),
        || {
            let q = http_json(port, "/api/v1/delistings?target=198.51.104.0/22");
            q["delistings"][0]["delisted_at"].is_i64().then_some(q)
        },
    );
    assert!(
        q["delistings"][0]["time_to_delist"]
            .as_i64()
            .is_some_and(|t| t >= 0),
        "{q:#}"
    );
    // a single target inside the range keeps its own pair: listed, never flipped by the range's check
    let a = http_json(port, "/api/v1/targets/198.51.100.7");
    let row = a["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["list"] == "own-mirror")
        .unwrap()
        .clone();
    assert_eq!(row["listed"], true, "{a:#}");
    assert!(row["listing"]["part"].is_null(), "{a:#}");
    assert!(
        !ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["target"] == "198.51.100.7" && e["kind"] == "delisted"),
        "{ev:#}"
    );
    // bad input: the mirror's data turns older than max_age: the ranges are
    // not checked (the page says why) and their listed parts stay, never clear
    for f in ["zen.ip4set", "zen6.ip6trie"] {
        let f = std::fs::File::options()
            .write(true)
            .open(data.join(f))
            .unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
    }
    let v = wait_for(
        "the stale mirror named on the range",
        Duration::from_secs(30),
        || {
            let v = http_json(port, "/api/v1/targets/198.51.96.0/20");
            let why = list_of(&v, "own-mirror")["why"]
                .as_str()
                .unwrap_or("")
                .to_string();
            why.contains("stale").then_some(v)
        },
    );
    assert_eq!(parts(&v, "own-mirror").len(), 2, "{v:#}");
    let (_, page) = http_get(port, "/target/198.51.96.0/20");
    assert!(page.contains("not checked: the list is stale"), "{page}");
    // the OpenAPI document describes the range route
    let doc = http_json(port, "/api/v1/openapi.json");
    assert!(doc["paths"]["/api/v1/targets/{addr}/{len}"].is_object());
    drop(d);
}
