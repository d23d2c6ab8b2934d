//! `reqsync transform dev DIR --config PROJECT`: the analyst's loop. On every save in the module
//! folder: build, example cases, property tests, a comparison with the project's active module
//! on a sample of the project's own rows, and — only when all of that passed — an atomic copy
//! into the project's `transforms/` folder, which a running service hot-swaps. One status line
//! per cycle; nothing is deployed after a failure.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use reqsync_runtime::config::Config;
use reqsync_runtime::transform::property::{DEFAULT_FRESH_EVERY, TestOptions, test_module};
use reqsync_runtime::transform::registry::examples_beside;
use reqsync_runtime::transform::{TransformEngine, TransformInstance};

use super::build::ToolchainArgs;
use super::kit::build;
use super::kit::manifest::Manifest;
use super::kit::toolchain::Toolchains;
use super::load_with_progress;
use super::row_input::{self, JobContext, Rows};
use crate::engine_options::EngineOptions;
use crate::exit::{self, Failure, OrExit};

/// Saves closer together than this are one change (an editor writes a file in several steps).
const QUIET: Duration = Duration::from_millis(300);

#[derive(Debug, Args)]
pub struct DevArgs {
    /// The module folder (holding reqsync-module.toml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The project whose module is replaced: its config file.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// The job whose module is replaced [default: the job whose module file is NAME.wasm,
    /// NAME being the module's name in reqsync-module.toml].
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// Generated rows checked by the property tests on every cycle (fewer when --test-seconds
    /// runs out first).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub cases: u32,
    /// Time box of the generated rows on every cycle: none is started after it, so a slow
    /// module still gets its answer quickly (`reqsync transform test` checks all of --cases).
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub test_seconds: u64,
    /// Time allowed to shrink a property-test failure to a minimal row.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub shrink_seconds: u64,
    /// Rows of the job's query the new version is compared on (0: no comparison).
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub sample: usize,
    /// Check on every save, but never copy into the project.
    #[arg(long)]
    pub no_deploy: bool,
    /// One cycle now, then exit: 0 when the module was deployed (or was already the project's),
    /// 5 when a check failed.
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub toolchain: ToolchainArgs,
}

/// What the loop keeps between cycles.
struct Session {
    dir: PathBuf,
    ctx: JobContext,
    engine: TransformEngine,
    toolchains: Toolchains,
    /// `None` when the source could not be read (the cycle then says so and still deploys).
    sample: Result<Rows, String>,
    args: DevArgs,
}

/// How a cycle ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    Deployed,
    /// The built module is byte for byte the project's.
    AlreadyActive,
    Checked,
    Failed,
}

pub fn run(args: DevArgs) -> Result<u8, Failure> {
    let session = Session::open(args)?;
    if session.args.once {
        return Ok(match session.cycle() {
            Ending::Failed => exit::TRANSFORM,
            _ => exit::OK,
        });
    }
    session.watch()
}

impl Session {
    fn open(args: DevArgs) -> Result<Self, Failure> {
        let dir =
            std::path::absolute(&args.dir).or_exit(exit::USAGE, "cannot find the module folder")?;
        let manifest = Manifest::load(&dir).or_exit(exit::CONFIG, "not a module folder")?;
        let config =
            Config::load(&args.config).or_exit(exit::CONFIG, "cannot load the configuration")?;
        let job = pick_job(
            &config,
            args.job.as_deref(),
            &manifest.module.name,
            &args.config,
        )?;
        let ctx = JobContext { config, job };
        // The project's own compiled-module cache: what this loop compiles, the service finds
        // compiled when it swaps the module in.
        let engine = EngineOptions::for_config(&ctx.config)
            .job(&ctx.job)
            .repeated_builds()
            .engine()?;
        let toolchains = args.toolchain.toolchains()?;
        let sample = if args.sample == 0 {
            Err("--sample 0".to_owned())
        } else {
            ctx.sample_rows(args.sample)
                .map_err(|f| format!("{:#}", f.error))
        };
        match &sample {
            Ok(rows) => eprintln!(
                "dev: {} → job `{}` ({}); {} rows of its query to compare on",
                dir.display(),
                ctx.job.name,
                ctx.job.transform.display(),
                rows.len()
            ),
            Err(why) => eprintln!(
                "dev: {} → job `{}` ({}); no comparison with the source's rows: {why}",
                dir.display(),
                ctx.job.name,
                ctx.job.transform.display()
            ),
        }
        Ok(Self {
            dir,
            ctx,
            engine,
            toolchains,
            sample,
            args,
        })
    }

    /// Cycles on every change in the module folder until interrupted.
    fn watch(&self) -> Result<u8, Failure> {
        use notify::Watcher;
        let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx)
            .or_exit(exit::INTERNAL, "cannot watch the module folder")?;
        watcher
            .watch(&self.dir, notify::RecursiveMode::Recursive)
            .or_exit(exit::INTERNAL, "cannot watch the module folder")?;
        self.cycle();
        eprintln!("dev: watching {} (Ctrl-C to stop)", self.dir.display());
        loop {
            // Wait for a change to a source file, then for the writes to settle.
            match rx.recv() {
                Ok(event) if self.is_source_change(&event) => {}
                Ok(_) => continue,
                Err(_) => return Ok(exit::OK),
            }
            while let Ok(more) = rx.recv_timeout(QUIET) {
                let _ = more;
            }
            self.cycle();
            // Changes made while the cycle ran are seen by the next `recv`.
        }
    }

    /// Whether an event touches the analyst's files (not the build's own output).
    fn is_source_change(&self, event: &notify::Result<notify::Event>) -> bool {
        let Ok(event) = event else { return false };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return false;
        }
        event.paths.iter().any(|path| {
            path.strip_prefix(&self.dir)
                .is_ok_and(|relative| !super::kit::sources::is_ignored(relative))
        })
    }

    /// One build–check–deploy cycle; prints one status line.
    fn cycle(&self) -> Ending {
        let started = Instant::now();
        let mut status = Status::new();
        let ending = self.run_cycle(&mut status);
        let stages = status.stage_times();
        status.push(format!("{:.1} s{stages}", started.elapsed().as_secs_f64()));
        println!(
            "{} {}",
            chrono::Local::now().format("%H:%M:%S"),
            status.line()
        );
        ending
    }

    fn run_cycle(&self, status: &mut Status) -> Ending {
        let built = match build::build(&self.dir, &self.toolchains) {
            Ok(built) => built,
            Err(e) => return status.fail(format!("build failed: {e:#}")),
        };
        status.stage("build");
        let module = match load_with_progress(&self.engine, &built.module) {
            Ok(module) => module,
            Err(e) => return status.fail(format!("does not load: {e}")),
        };
        status.stage("compile");
        let mut candidate = match TransformInstance::new(&self.engine, &module) {
            Ok(instance) => instance,
            Err(e) => return status.fail(format!("does not start: {e}")),
        };
        let info = candidate.info().clone();
        status.push(format!(
            "built {} {} ({})",
            info.name,
            info.version,
            &module.sha256[..12]
        ));
        let Some(examples) = built.examples.clone() else {
            return status.fail(
                "no examples.json (a service swaps in only a module that passes its example cases)"
                    .into(),
            );
        };
        let as_of = match reqsync_runtime::transform::examples::ExampleFile::load(&examples) {
            Ok(file) => file.as_of_date,
            Err(e) => return status.fail(format!("examples: {e}")),
        };
        let options = TestOptions {
            cases: self.args.cases,
            seed: rand::random(),
            as_of,
            examples: Some(examples),
            fresh_every: DEFAULT_FRESH_EVERY,
            max_shrink_time: Duration::from_secs(self.args.shrink_seconds),
            max_generation_time: Some(Duration::from_secs(self.args.test_seconds)),
        };
        let report = match test_module(&self.engine, &module, &options) {
            Ok(report) => report,
            Err(e) => return status.fail(format!("tests could not run: {e}")),
        };
        status.stage("tests");
        if let Some(e) = &report.examples {
            let passed = e.cases - e.failures.len();
            match e.failures.first() {
                None => status.push(format!("examples {passed}/{}", e.cases)),
                Some(first) => {
                    return status.fail(format!(
                        "examples {passed}/{}: `{}` {}",
                        e.cases, first.case, first.reason
                    ));
                }
            }
        }
        match &report.failure {
            None if report.time_boxed => status.push(format!(
                "properties ok ({} rows in the {} s box)",
                report.cases_run, self.args.test_seconds
            )),
            None => status.push(format!("properties ok ({} rows)", report.cases_run)),
            Some(f) => {
                let module_path = built.module.display();
                return status.fail(format!(
                    "property `{}` broken: {} (see `reqsync transform test {module_path} --seed {} --cases {} --as-of {}`)",
                    f.property.id(),
                    f.detail,
                    report.seed,
                    report.cases_requested,
                    report.as_of
                ));
            }
        }
        let destination = self.destination();
        let active = self.engine.load(&destination);
        let already = active
            .as_ref()
            .is_ok_and(|active| active.sha256 == module.sha256);
        match (&self.sample, &active) {
            (Ok(rows), Ok(active_module)) if !already => {
                match self.compare(rows, active_module, &mut candidate) {
                    Ok(changed) => status.push(format!("{changed} of {} rows change", rows.len())),
                    Err(why) => return status.fail(format!("comparison failed: {why}")),
                }
            }
            (Err(_), _) => status.push("no source rows to compare".into()),
            (_, Err(_)) if !already => status.push("no active module to compare".into()),
            _ => {}
        }
        status.stage("compare");
        if already {
            status.push(format!("already {}", destination.display()));
            return Ending::AlreadyActive;
        }
        if self.args.no_deploy {
            status.push("not deployed (--no-deploy)".into());
            return Ending::Checked;
        }
        match deploy(&built.module, &destination) {
            Ok(()) => {
                status.push(format!("deployed → {}", destination.display()));
                Ending::Deployed
            }
            Err(e) => status.fail(format!("cannot deploy: {e:#}")),
        }
    }

    /// The job's module file in the project.
    fn destination(&self) -> PathBuf {
        self.ctx.job.transform.clone()
    }

    /// Rows of the sample the candidate treats differently from the active module.
    fn compare(
        &self,
        rows: &Rows,
        active: &reqsync_runtime::transform::CompiledModule,
        candidate: &mut TransformInstance,
    ) -> Result<usize, String> {
        let mut active = TransformInstance::new(&self.engine, active).map_err(|e| e.to_string())?;
        rows.check_columns(&[active.info(), candidate.info()])
            .map_err(|f| format!("{:#}", f.error))?;
        let as_of = row_input::as_of(None, Some(&self.ctx));
        let old = rows
            .outcomes(&mut active, as_of)
            .map_err(|f| format!("{:#}", f.error))?;
        let new = rows
            .outcomes(candidate, as_of)
            .map_err(|f| format!("{:#}", f.error))?;
        Ok(super::diff::changed_rows(&old, &new))
    }
}

/// The job to deploy to: named, or the one whose module file is `NAME.wasm`.
fn pick_job(
    config: &Config,
    named: Option<&str>,
    module_name: &str,
    path: &Path,
) -> Result<reqsync_runtime::config::JobConfig, Failure> {
    let jobs: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
    let found = match named {
        Some(name) => config.jobs.iter().find(|j| j.name == name),
        None => {
            let file = format!("{module_name}.wasm");
            let mut matching = config
                .jobs
                .iter()
                .filter(|j| j.transform.file_name().is_some_and(|f| f == file.as_str()));
            match (matching.next(), matching.next()) {
                (Some(job), None) => Some(job),
                _ => {
                    return Err(Failure::new(
                        exit::USAGE,
                        anyhow::anyhow!(
                            "no single job of {} runs a module file named {file}: name the job \
                             with --job (jobs: {})",
                            path.display(),
                            jobs.join(", ")
                        ),
                    ));
                }
            }
        }
    };
    found.cloned().ok_or_else(|| {
        Failure::new(
            exit::USAGE,
            anyhow::anyhow!(
                "no job `{}` in {} (jobs: {})",
                named.unwrap_or_default(),
                path.display(),
                jobs.join(", ")
            ),
        )
    })
}

/// Copies the built module and its example cases into the project: the examples first, since
/// the service validates a new module against the examples beside it when the module changes.
/// Each file is written beside its destination and renamed over it, keeping the destination's
/// permissions (the service's account must still be able to read it).
fn deploy(built: &Path, destination: &Path) -> anyhow::Result<()> {
    install(&examples_beside(built), &examples_beside(destination))?;
    install(built, destination)
}

fn install(source: &Path, destination: &Path) -> anyhow::Result<()> {
    use std::io::Write;

    use anyhow::Context;
    let folder = destination
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = folder.join(format!(".{name}.{}.deploying", std::process::id()));
    let bytes =
        std::fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
    let result = (|| {
        // Created new (never through a link someone left at that name), then given the
        // permissions of the file it replaces, so the service's account can still read it.
        let mut file = reqsync_private_fs::create_new(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", partial.display()))?;
        if let Ok(existing) = std::fs::metadata(destination) {
            std::fs::set_permissions(&partial, existing.permissions())
                .with_context(|| format!("cannot set the permissions of {}", partial.display()))?;
        }
        std::fs::rename(&partial, destination)
            .with_context(|| format!("cannot replace {}", destination.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// One cycle's status line, built step by step, with the time each stage took.
struct Status {
    parts: Vec<String>,
    stages: Vec<(&'static str, Duration)>,
    last: Instant,
}

impl Status {
    fn new() -> Self {
        Self {
            parts: Vec::new(),
            stages: Vec::new(),
            last: Instant::now(),
        }
    }

    /// Ends the stage `name` now.
    fn stage(&mut self, name: &'static str) {
        let now = Instant::now();
        self.stages.push((name, now - self.last));
        self.last = now;
    }

    /// ` (build 11.0, compile 2.1, …)`: where the cycle's time went.
    fn stage_times(&self) -> String {
        if self.stages.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .stages
            .iter()
            .map(|(name, took)| format!("{name} {:.1}", took.as_secs_f64()))
            .collect();
        format!(" ({})", parts.join(", "))
    }

    fn push(&mut self, part: String) {
        self.parts.push(part);
    }

    fn fail(&mut self, why: String) -> Ending {
        self.parts.push(format!("FAILED: {why} · not deployed"));
        Ending::Failed
    }

    fn line(&self) -> String {
        self.parts.join(" · ")
    }
}
