//! The `rblwatch` binary: parse arguments, set up logging, run a command, map
//! the result to an exit status. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    rblwatch::cli::main()
}
