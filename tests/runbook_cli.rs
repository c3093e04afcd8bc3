//! `opsbot runbook print` and `opsbot runbook check FILE`, run as a team
//! would: the real binary, files on disk, exit codes and output compared.

use opsbot_handlers::runbook::Runbook;
use std::path::PathBuf;
use std::process::{Command, Output};

fn opsbot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opsbot")).args(args).output().expect("run opsbot")
}

/// A fresh file under Cargo's per-target temp dir; the test's name keeps
/// parallel tests apart.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runbook_cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// 1-based line of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect(needle) + 1
}

#[test]
fn print_round_trips_through_check() {
    let out = opsbot(&["runbook", "print"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout.clone()).unwrap(), Runbook::SEED_YAML);

    let path = temp_file("printed.yml", std::str::from_utf8(&out.stdout).unwrap());
    let check = opsbot(&["runbook", "check", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let seed = Runbook::seed();
    assert_eq!(
        stdout.trim_end(),
        format!(
            "{}: ok ({} roles, 4 severities, {} checklists, {} warnings)",
            path.display(),
            seed.roles.len(),
            seed.checklists.len(),
            seed.roles.len()
        )
    );
    // The seed's roles are `@here` placeholders, and check says so at each.
    let stderr = String::from_utf8_lossy(&check.stderr);
    let text = Runbook::SEED_YAML;
    let first = format!(
        "{}:{}:13: warning: role `on-call-engineer` pages `@here`, whoever happens to be in the channel",
        path.display(),
        line_of(text, "people: [\"@here\"]")
    );
    assert!(stderr.lines().next().is_some_and(|l| l.starts_with(&first)), "{stderr}");
    assert_eq!(stderr.lines().count(), seed.roles.len(), "{stderr}");
}

#[test]
fn a_runbook_whose_roles_are_people_or_rotations_checks_without_warnings() {
    let text = Runbook::SEED_YAML.replace("people: [\"@here\"]", "people: [U0123ABCD]");
    let path = temp_file("named.yml", &text);
    let check = opsbot(&["runbook", "check", path.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    assert!(check.stderr.is_empty(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).trim_end().ends_with("checklists)"));
}

#[test]
fn bad_runbook_reports_line_and_column() {
    // Three mistakes of different kinds in the team's copy of the default;
    // all three are reported, in file order, each with its place.
    let text = Runbook::SEED_YAML
        .replacen("    people: [\"@here\"]", "    people: []", 1)
        .replacen("    respond: 5m", "    respond: 5 minutes?", 1)
        .replacen("    responsible: devops-engineer-on-duty", "    responsible: devops-on-duty", 1);
    let path = temp_file("bad.yml", &text);
    let out = opsbot(&["runbook", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let file = path.display().to_string();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0]
            .starts_with(&format!("{file}:{}:13: role `on-call-engineer` has no people", line_of(&text, "people: []"))),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{file}:{}:14: bad duration `5 minutes?` for `respond` of P0: write",
            line_of(&text, "5 minutes?")
        )),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "{file}:{}:18: `responsible` of morning-health-check names role `devops-on-duty`, which is not defined (did you mean `devops-engineer-on-duty`?)",
            line_of(&text, "responsible: devops-on-duty")
        )),
        "{stderr}"
    );
}

#[test]
fn unknown_key_is_one_error_with_its_place() {
    let text = Runbook::SEED_YAML.replacen("    escalation:", "    escalaton:", 1);
    let path = temp_file("typo.yml", &text);
    let out = opsbot(&["runbook", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "{}:{}:5: unknown key `escalaton` (expected one of: label, description, respond, resolve, update_every, escalation, also_page, escalate, also_page_after, playbook)\n",
            path.display(),
            line_of(&text, "escalaton:")
        )
    );
}

#[test]
fn unreadable_file_is_one_line_and_exit_2() {
    let missing = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runbook_cli/does-not-exist.yml");
    let out = opsbot(&["runbook", "check", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("{}: cannot read: ", missing.display())), "{stderr}");
}

#[test]
fn help_lists_the_runbook_subcommands() {
    let out = opsbot(&["runbook", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("print") && help.contains("check"), "{help}");
}

#[test]
fn redis_adopt_refuses_an_id_it_cannot_read_before_touching_redis() {
    for bad in ["43", "INC-0", "FOO-3", "INC-x"] {
        let out = opsbot(&["redis", "adopt", "--next", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("`{bad}` is not an id such as INC-43")), "{stderr}");
    }
}
