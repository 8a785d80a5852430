//! Writes tapctl's man pages and shell completions from its clap definition.
//!
//! Usage: pam-tap-gen OUT_DIR VERSION DATE
//!   OUT_DIR/man/tapctl.1, OUT_DIR/man/tapctl-<subcommand>.1 (and deeper)
//!   OUT_DIR/completions/{tapctl.bash,_tapctl,tapctl.fish}

use clap::CommandFactory;
use clap_complete::Shell;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use tapctl::failure::Exit;

const EXITS: [Exit; 6] = [
    Exit::Internal,
    Exit::Usage,
    Exit::NotPermitted,
    Exit::NotFound,
    Exit::Policy,
    Exit::Store,
];

/// The match is exhaustive so that a new exit code fails this build until
/// it is described here.
fn describe(exit: Exit) -> &'static str {
    match exit {
        Exit::Internal => "Internal error.",
        Exit::Usage => "Bad usage or input.",
        Exit::NotPermitted => {
            "Not permitted: the caller may not do this (see the policy's [admins])."
        }
        Exit::NotFound => "Not found: no such user or pass.",
        Exit::Policy => "The policy is invalid or unsafe (see \\fBtapctl policy check\\fR).",
        Exit::Store => "The store is unavailable or damaged.",
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, version, date] = args.as_slice() else {
        eprintln!("usage: pam-tap-gen OUT_DIR VERSION DATE");
        std::process::exit(2);
    };
    let out = Path::new(out);
    let base = tapctl::cli::Cli::command()
        .name("tapctl")
        .bin_name("tapctl")
        .version(leak(version));
    let mut cmd = base.clone();
    cmd.build();
    // Man pages describe the real subcommands; `help` gets no page of its own.
    let mut man_cmd = without_help_subcommand(base);
    man_cmd.build();

    let man = out.join("man");
    fs::create_dir_all(&man)?;
    write_page(&man_cmd, "tapctl", &man, version, date, true)?;

    let comp = out.join("completions");
    fs::create_dir_all(&comp)?;
    for (shell, file) in [
        (Shell::Bash, "tapctl.bash"),
        (Shell::Zsh, "_tapctl"),
        (Shell::Fish, "tapctl.fish"),
    ] {
        let mut c = cmd.clone();
        let mut f = File::create(comp.join(file))?;
        clap_complete::generate(shell, &mut c, "tapctl", &mut f);
    }
    Ok(())
}

fn without_help_subcommand(cmd: clap::Command) -> clap::Command {
    cmd.disable_help_subcommand(true)
        .mut_subcommands(without_help_subcommand)
}

/// clap wants `&'static str` without its "string" feature; this program is short-lived.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// One page per command, `tapctl-issue(1)` style for subcommands, recursively.
fn write_page(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    version: &str,
    date: &str,
    top: bool,
) -> io::Result<()> {
    let page = cmd.clone().name(leak(name));
    let man = clap_mangen::Man::new(page.clone())
        .title(name.to_uppercase())
        .section("1")
        .date(date.to_string())
        .source(format!("pam_tap {version}"))
        .manual("User Commands");
    let mut buf: Vec<u8> = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    if page.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut buf)?;
    }
    // tapctl's after_help is its exit-status summary, which EXIT STATUS
    // below gives in full; anything else there is kept.
    let after = page
        .get_after_long_help()
        .or(page.get_after_help())
        .map(|s| s.to_string());
    if after.is_some_and(|s| !s.starts_with("Exit status")) {
        man.render_extra_section(&mut buf)?;
    }
    let mut roff = String::new();
    roff.push_str(".SH \"EXIT STATUS\"\n");
    roff.push_str(".TP\n.B 0\nSuccess.\n");
    for exit in EXITS {
        roff.push_str(&format!(".TP\n.B {}\n{}\n", exit as i32, describe(exit)));
    }
    if top {
        roff.push_str(concat!(
            ".SH FILES\n",
            ".TP\n.I /etc/security/pam_tap.toml\nThe policy; see \\fBpam_tap.toml\\fR(5).\n",
            ".TP\n.I /var/lib/pam_tap/tap.db\nThe default store of passes and audit records.\n",
            ".SH NOTES\n",
            "\\fBtapctl\\fR is installed setgid to the store's group (\\fBpam\\-tap\\fR) so that it can\n",
            "open the store; the real user id decides what the caller may do.\n",
        ));
    }
    let mut see_also: Vec<String> = Vec::new();
    if !top {
        see_also.push("\\fBtapctl\\fR(1)".into());
    }
    for sub in page.get_subcommands().filter(|s| !s.is_hide_set()) {
        see_also.push(format!("\\fB{name}\\-{}\\fR(1)", sub.get_name()));
    }
    see_also.push("\\fBpam_tap\\fR(8)".into());
    see_also.push("\\fBpam_tap.toml\\fR(5)".into());
    roff.push_str(".SH \"SEE ALSO\"\n");
    roff.push_str(&see_also.join(",\n"));
    roff.push('\n');
    buf.extend_from_slice(roff.as_bytes());
    File::create(dir.join(format!("{name}.1")))?.write_all(&buf)?;

    for sub in page.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub_name = format!("{name}-{}", sub.get_name());
        let sub_cmd = sub.clone().bin_name(format!(
            "{} {}",
            page.get_bin_name().unwrap_or(name),
            sub.get_name()
        ));
        write_page(&sub_cmd, &sub_name, dir, version, date, false)?;
    }
    Ok(())
}
