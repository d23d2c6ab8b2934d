//! docs/TUTORIAL.md, executed: every ```sh block runs in bash and every ```diff block is applied
//! to the file it names, in the order the tutorial gives them, in an empty folder with `reqsync`
//! on the PATH — as an analyst without the repository follows it. The tutorial cannot drift from
//! the product: a command that changed, an edit that no longer applies or an output that no
//! longer says what the text promises fails this test.
//!
//! An HTML comment before a block (invisible in the rendered page) says what to expect:
//! `<!-- test: background "PHRASE" -->` starts the block in the background (a second terminal)
//! and waits until its output says PHRASE; `exit N` expects that exit status; `output "PHRASE"`
//! expects the phrase in the output; `until "PHRASE"` runs the block again until it says it.
//! Exported variables and the current folder carry over from one block to the next, as in one
//! terminal. The tutorial's fixed ports are swapped for free ones.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::xdg_state_home;

/// A background block's start (the first build installs a toolchain) and an `until` block's
/// repeats may take this long.
const PATIENCE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Success,
    Exit(i32),
    Output(String),
    Until(String),
    Background(String),
}

#[derive(Debug)]
enum Step {
    Shell {
        script: String,
        expect: Expect,
        line: usize,
    },
    Diff {
        text: String,
        line: usize,
    },
}

fn quoted(text: &str) -> String {
    let start = text.find('"').expect("a quoted phrase") + 1;
    let end = text[start..].find('"').expect("a closing quote") + start;
    text[start..end].to_owned()
}

fn parse(tutorial: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut expect = Expect::Success;
    let mut lines = tutorial.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("<!-- test:") {
            let rest = rest.trim_end_matches("-->").trim();
            expect = if rest.starts_with("background") {
                Expect::Background(quoted(rest))
            } else if rest.starts_with("output") {
                Expect::Output(quoted(rest))
            } else if rest.starts_with("until") {
                Expect::Until(quoted(rest))
            } else if let Some(code) = rest.strip_prefix("exit") {
                Expect::Exit(code.trim().parse().expect("an exit code"))
            } else {
                panic!("line {}: unknown test comment `{rest}`", index + 1);
            };
            continue;
        }
        let kind = match trimmed {
            "```sh" => "sh",
            "```diff" => "diff",
            _ if trimmed.starts_with("```") && trimmed.len() > 3 => {
                // Another language: shown, not run.
                for (_, l) in lines.by_ref() {
                    if l.trim() == "```" {
                        break;
                    }
                }
                continue;
            }
            _ => continue,
        };
        let mut body = String::new();
        for (_, l) in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let line = index + 1;
        steps.push(if kind == "sh" {
            Step::Shell {
                script: body,
                expect: std::mem::replace(&mut expect, Expect::Success),
                line,
            }
        } else {
            assert_eq!(
                expect,
                Expect::Success,
                "line {line}: a diff takes no test comment"
            );
            Step::Diff { text: body, line }
        });
    }
    steps
}

/// Applies a unified diff whose hunks have no line numbers: each hunk's context and removed
/// lines must appear exactly once in the file, and are replaced by its context and added lines.
fn apply_diff(dir: &Path, diff: &str, line: usize) {
    let path = diff
        .lines()
        .find_map(|l| l.strip_prefix("+++ b/"))
        .unwrap_or_else(|| panic!("line {line}: a diff names its file with `+++ b/PATH`"));
    let file = dir.join(path.trim());
    let mut content = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("line {line}: {}: {e}", file.display()));
    let body: Vec<&str> = diff.lines().skip_while(|l| !l.starts_with("@@")).collect();
    for hunk in body
        .split(|l| l.starts_with("@@"))
        .filter(|h| !h.is_empty())
    {
        let (mut old, mut new) = (Vec::new(), Vec::new());
        for l in hunk {
            let (mark, text) = l.split_at(l.len().min(1));
            match mark {
                " " => {
                    old.push(text);
                    new.push(text);
                }
                "-" => old.push(text),
                "+" => new.push(text),
                "" => {
                    old.push("");
                    new.push("");
                }
                other => panic!("line {line}: a diff line starting with `{other}`"),
            }
        }
        let (old, new) = (old.join("\n"), new.join("\n"));
        let found = content.matches(&old).count();
        assert_eq!(
            found, 1,
            "line {line}: a hunk of the diff of {path} should match the file once:\n{old}"
        );
        content = content.replacen(&old, &new, 1);
    }
    std::fs::write(&file, content).expect("write the edited file");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// One terminal session: its folder, the variables it exported, and the background commands.
struct Session {
    dir: PathBuf,
    state: tempfile::TempDir,
    background: Vec<(Child, PathBuf)>,
}

impl Session {
    fn command(&self, script: &str) -> Command {
        let state = self.state.path();
        let wrapped = format!(
            "set -e\n\
             cd \"$(cat '{pwd}' 2>/dev/null || echo '{dir}')\"\n\
             [ -f '{env}' ] && . '{env}'\n\
             trap \"export -p > '{env}'; pwd > '{pwd}'\" EXIT\n\
             {script}",
            pwd = state.join("pwd").display(),
            env = state.join("env").display(),
            dir = self.dir.display(),
        );
        let bin = Path::new(env!("CARGO_BIN_EXE_reqsync"))
            .parent()
            .expect("the binary's folder")
            .to_path_buf();
        let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .expect("PATH");
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(wrapped)
            .current_dir(&self.dir)
            .env("PATH", path)
            // The toolchains and the Rust build are shared with the other kit tests and runs.
            .env("XDG_CACHE_HOME", tmp.join("xdg-cache"))
            .env("XDG_STATE_HOME", xdg_state_home())
            .env("CARGO_TARGET_DIR", tmp.join("kit-rust-target"))
            .env_remove("REQSYNC_LOG")
            .env_remove("REQCHECK_USERNAME")
            .env_remove("REQCHECK_PASSWORD");
        command
    }

    /// Runs a block to its end; its status and output.
    fn run(&self, script: &str) -> (Option<i32>, String) {
        let out = self.command(script).output().expect("run bash");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    fn start(&mut self, script: &str, ready: &str, line: usize) {
        let log = self.state.path().join(format!("background-{line}.log"));
        let file = std::fs::File::create(&log).expect("log");
        let mut command = self.command(script);
        command
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .stdin(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().expect("start a background block");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            if said.contains(ready) {
                break;
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!(
                    "line {line}: the background block ended ({status}) before saying `{ready}`:\n{said}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "line {line}: the background block never said `{ready}`:\n{said}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        self.background.push((child, log));
    }

    fn background_logs(&self) -> String {
        self.background
            .iter()
            .map(|(_, log)| {
                format!(
                    "--- {}\n{}",
                    log.display(),
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for (child, _) in &mut self.background {
            // The whole process group: bash and the reqsync it started.
            let _ = Command::new("kill")
                .args(["-s", "TERM", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }
}

#[test]
fn every_command_and_edit_of_the_tutorial_works_as_written() {
    let tutorial =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/TUTORIAL.md"))
            .expect("docs/TUTORIAL.md");
    // The documented ports, 3000 and 9464, may be taken here: free ones instead, wherever the
    // reader types or adds them. A diff's removed and context lines (starting with `-` or a
    // space) are what the file holds as reqsync wrote it, so they keep the documented ones.
    let ports = [
        ("127.0.0.1:3000", format!("127.0.0.1:{}", free_port())),
        ("127.0.0.1:9464", format!("127.0.0.1:{}", free_port())),
    ];
    let tutorial = tutorial
        .lines()
        .map(|line| match line.chars().next() {
            Some('-' | ' ') => line.to_owned(),
            _ => ports
                .iter()
                .fold(line.to_owned(), |l, (from, to)| l.replace(from, to)),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let steps = parse(&tutorial);
    assert!(
        steps
            .iter()
            .filter(|s| matches!(s, Step::Shell { .. }))
            .count()
            >= 10,
        "the tutorial's commands were not found"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut session = Session {
        dir: dir.path().to_path_buf(),
        state: tempfile::tempdir().expect("state dir"),
        background: Vec::new(),
    };
    for step in &steps {
        match step {
            Step::Diff { text, line } => apply_diff(dir.path(), text, *line),
            Step::Shell {
                script,
                expect,
                line,
            } => match expect {
                Expect::Background(ready) => session.start(script, ready, *line),
                Expect::Until(phrase) => {
                    let deadline = Instant::now() + PATIENCE;
                    loop {
                        let (_, said) = session.run(script);
                        if said.contains(phrase.as_str()) {
                            break;
                        }
                        assert!(
                            Instant::now() < deadline,
                            "line {line}: never said `{phrase}`; last:\n{said}\n{}",
                            session.background_logs()
                        );
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                expect => {
                    let (code, said) = session.run(script);
                    let wanted = match expect {
                        Expect::Exit(code) => *code,
                        _ => 0,
                    };
                    assert_eq!(
                        code,
                        Some(wanted),
                        "line {line}: `{}` exited with {code:?}:\n{said}\n{}",
                        script.trim(),
                        session.background_logs()
                    );
                    if let Expect::Output(phrase) = expect {
                        assert!(
                            said.contains(phrase.as_str()),
                            "line {line}: the output should say `{phrase}`:\n{said}"
                        );
                    }
                }
            },
        }
    }
}

#[test]
fn a_diff_hunk_that_does_not_match_is_reported_not_skipped() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("a.txt"), "one\ntwo\n").expect("write");
    let ok = "--- a/a.txt\n+++ b/a.txt\n@@\n one\n-two\n+three\n";
    apply_diff(dir.path(), ok, 1);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).expect("read"),
        "one\nthree\n"
    );
    let stale = std::panic::catch_unwind(|| apply_diff(dir.path(), ok, 1));
    assert!(
        stale.is_err(),
        "an edit that no longer applies must fail the test"
    );
}
