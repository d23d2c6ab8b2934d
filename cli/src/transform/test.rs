//! `reqsync transform test MODULE.wasm`: the module alone, on its example cases and on generated
//! rows (see `reqsync_runtime::transform::property`).

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use clap::Args;
use reqsync_runtime::transform::examples::ExampleFile;
use reqsync_runtime::transform::property::checks::Property;
use reqsync_runtime::transform::property::{
    DEFAULT_FRESH_EVERY, TestOptions, TestReport, test_module,
};
use reqsync_runtime::transform::registry::examples_beside;

use crate::engine_options::CacheArgs;
use crate::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The module file (`.wasm` component).
    pub module: PathBuf,
    /// Generated rows to check after the example cases.
    #[arg(long, default_value_t = 1000)]
    pub cases: u32,
    /// Seed of the row generator [default: random, printed]; with the same --cases and
    /// --as-of it reproduces a run exactly.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The as-of date generated rows are judged at [default: the example file's, else today].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<NaiveDate>,
    /// The example cases [default: NAME.examples.json beside NAME.wasm, which hot swap also
    /// requires].
    #[arg(long, value_name = "FILE", conflicts_with = "no_examples")]
    pub examples: Option<PathBuf>,
    /// Check generated rows only.
    #[arg(long)]
    pub no_examples: bool,
    /// Deadline of one row during the test (a batch of generated rows that overruns it is
    /// retried one row per call). A row that takes longer is a failure: real batches hold
    /// hundreds of rows under the job's deadline.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub deadline_ms: u64,
    /// Print the report as JSON (for CI).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub project: super::ProjectArgs,
}

pub fn run(args: TestArgs) -> Result<u8, Failure> {
    let engine = args
        .project
        .engine_options(&args.cache)?
        .call_deadline(Duration::from_millis(args.deadline_ms.max(1)))
        .engine()?;
    let context = "cannot load the module".to_owned();
    let module = engine
        .load(&args.module)
        .or_exit(exit::TRANSFORM, &context)?;

    let examples = if args.no_examples {
        None
    } else {
        let file = args
            .examples
            .clone()
            .unwrap_or_else(|| examples_beside(&args.module));
        if !file.is_file() {
            return Err(Failure::new(
                exit::CONFIG,
                anyhow::anyhow!(
                    "no example cases at {} (hot swap refuses a module without them); write \
                     them, point --examples at them, or pass --no-examples",
                    file.display()
                ),
            ));
        }
        Some(file)
    };
    let as_of = match (args.as_of, &examples) {
        (Some(d), _) => d,
        (None, Some(file)) => {
            ExampleFile::load(file)
                .or_exit(exit::CONFIG, "cannot read the example cases")?
                .as_of_date
        }
        (None, None) => chrono::Local::now().date_naive(),
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    let options = TestOptions {
        cases: args.cases,
        seed,
        as_of,
        examples,
        fresh_every: DEFAULT_FRESH_EVERY,
        max_shrink_time: Duration::from_secs(60),
        max_generation_time: None,
    };
    let report = test_module(&engine, &module, &options).or_exit(exit::TRANSFORM, &context)?;

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).or_exit(exit::INTERNAL, "cannot write JSON")?
        );
    } else {
        print_report(&report, &args);
    }
    Ok(if report.passed {
        exit::OK
    } else {
        exit::TRANSFORM
    })
}

fn print_report(r: &TestReport, args: &TestArgs) {
    let m = &r.module;
    println!(
        "module     {} {} ({}) sha256 {}",
        m.name, m.version, m.target, m.sha256
    );
    match &r.examples {
        Some(e) => {
            println!(
                "examples   {}/{} passed ({})",
                e.cases - e.failures.len(),
                e.cases,
                e.file.display()
            );
            for f in &e.failures {
                println!("  FAIL {}: {}", f.case, f.reason);
            }
        }
        None => println!("examples   not checked"),
    }
    let o = &r.outcomes;
    println!(
        "generated  {} rows (seed {}, as of {}): emit {}, skip {}, reject {}",
        r.cases_run, r.seed, r.as_of, o.emit, o.skip, o.reject
    );
    println!(
        "speed      {:.0} generated rows/s; {} ms in all (load, examples, rows, batch check{})",
        r.cases_per_second,
        r.elapsed_ms,
        if r.failure.as_ref().is_some_and(|f| f.shrink.is_some()) {
            ", shrinking"
        } else {
            ""
        }
    );
    match &r.failure {
        None => {
            let held: Vec<&str> = Property::ALL
                .into_iter()
                .filter(|p| *p != Property::Examples)
                .map(Property::id)
                .collect();
            println!("properties all held: {}", held.join(", "));
        }
        Some(f) => {
            println!("FAIL       {}: {}", f.property.id(), f.detail);
            if let Some(row) = &f.row {
                let row = serde_json::Value::Object(row.clone()).to_string();
                let minimal = f.shrink.as_ref().is_some_and(|s| s.complete);
                let label = if minimal {
                    "minimal row"
                } else {
                    "failing row"
                };
                println!("{label} (generated, not real data):\n  {row}");
                if let Some(s) = &f.shrink {
                    let generator = if s.generator_capped {
                        format!(
                            " ({} of them the generator's own, its cap)",
                            s.generator_checks
                        )
                    } else {
                        String::new()
                    };
                    let checks = match s.checks {
                        1 => "1 check".to_owned(),
                        n => format!("{n} checks"),
                    };
                    match &s.stopped {
                        None => println!(
                            "shrunk     in {checks}{generator}: no column can be made plainer"
                        ),
                        Some(why) => println!(
                            "shrunk     in {checks}{generator}, then stopped ({why}): the row \
                             may not be minimal"
                        ),
                    }
                }
                let module = args.module.display();
                println!(
                    "reproduce: reqsync transform test {module} --seed {} --cases {} --as-of {}",
                    r.seed, r.cases_requested, r.as_of
                );
                println!(
                    "try it:    reqsync transform try {module} --as-of {} --row '{}'",
                    r.as_of,
                    row.replace('\'', "'\\''")
                );
            }
        }
    }
    println!("{}", if r.passed { "PASS" } else { "FAIL" });
}
