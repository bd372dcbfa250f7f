//! `routesim fit`: provider models fitted to a log, printed with their goodness of fit and written as
//! scenario endpoints (`providers.toml`) with a QQ plot per endpoint.

use sim::failure::Failure;
use sim::fit_files::write_files;
use sim::logs::fit::{EndpointFit, Fit, fit_log};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Arguments of `routesim fit`.
#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// The log: .csv, .jsonl/.ndjson or .parquet.
    #[arg(long)]
    pub log: PathBuf,
    /// The log's format (litellm, portkey, azure, burstgpt, generic); default: detected from the columns.
    #[arg(long)]
    pub format: Option<String>,
    /// A scenario whose [replay] section maps the log's columns (for a generic log with other names).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Where to write the fitted endpoints; QQ plots go next to it.
    #[arg(long, default_value = "providers.toml")]
    pub out: PathBuf,
    /// Stop at the first malformed row instead of counting and skipping it.
    #[arg(long)]
    pub strict: bool,
}

/// Runs the command.
pub fn run(args: &FitArgs) -> Result<(), Failure> {
    let cfg = match &args.scenario {
        Some(s) => sim::scenario::Scenario::load(s)?.replay,
        None => None,
    };
    let reader = sim::logs::open(&args.log, args.format.as_deref(), cfg.as_ref())
        .map_err(|e| Failure::Invalid(e.to_string()))?;
    let (fits, errors, read) = fit_log(&reader, args.strict).map_err(|e| Failure::Invalid(e.to_string()))?;
    if errors.total() > 0 {
        eprint!("warning: {}", errors.render(&args.log, read));
    }
    if fits.is_empty() {
        return Err(Failure::Invalid(format!("{}: no usable row to fit", args.log.display())));
    }
    print!("{}", render(&fits, &reader.format.name, read, errors.total()));
    for f in fits.iter().filter(|f| !f.placeholders.is_empty()) {
        eprintln!(
            "warning: endpoint `{}`: the log does not inform {}; providers.toml holds placeholders there: edit \
             them before use",
            f.name,
            f.placeholders.join(", ")
        );
    }
    write_files(&fits, &args.out, &args.log, &reader.format.name, read, errors.total())?;
    println!(
        "\nWrote {} endpoints to {}, a QQ plot per endpoint (qq-<id>.png/.svg) and their points (qq.parquet) \
         beside it.",
        fits.len(),
        args.out.display()
    );
    Ok(())
}

fn fit_cell(f: &Option<Fit>) -> String {
    match f {
        None => "-".into(),
        Some(f) => {
            let p = match f.family {
                sim::logs::fit::Family::Lognormal { mu, sigma } => {
                    format!("median {:.4} s, sigma {sigma:.3}", mu.exp())
                }
                sim::logs::fit::Family::Gamma { shape, scale } => {
                    format!("mean {:.4} s, shape {shape:.3}", shape * scale)
                }
                sim::logs::fit::Family::Exponential { mean } => format!("mean {mean:.4} s"),
            };
            format!("{} ({p}), KS {:.4}, n {}", f.family.name(), f.ks, f.n)
        }
    }
}

/// The terminal report: per endpoint, the fits, error rates, rates and prices, then the quantile tables.
pub fn render(fits: &[EndpointFit], format: &str, read: u64, malformed: u64) -> String {
    let mut out =
        format!("Fitted {} endpoint(s) from {read} rows ({format} format, {malformed} malformed)\n", fits.len());
    for f in fits {
        let _ = writeln!(out, "\n{} ({} requests)", f.name, f.requests);
        match f.slope {
            Some(b) => {
                let _ = writeln!(out, "  no TTFT logged: latency = intercept + {b:.6} s x (output tokens - 1)");
                let _ = writeln!(out, "  intercept:     {}", fit_cell(&f.ttft));
            }
            None => {
                let _ = writeln!(out, "  TTFT:          {}", fit_cell(&f.ttft));
                let _ = writeln!(out, "  per token:     {}", fit_cell(&f.tpot));
            }
        }
        let e = &f.errors;
        let _ = writeln!(
            out,
            "  errors:        429 {:.3}%, 5xx {:.3}%, timeout {:.3}%",
            e.rate_limited * 100.0,
            e.server * 100.0,
            e.timeout * 100.0
        );
        let ceiling = f.rpm_ceiling.map_or("no 429 seen".into(), |r| format!("429s at about {r} requests/min"));
        let _ = writeln!(out, "  peak:          {} requests/min, {} tokens/min; {ceiling}", f.peak_rpm, f.peak_tpm);
        if let Some(p) = &f.price {
            let _ = writeln!(
                out,
                "  price:         {} USD/M input, {} USD/M output (least squares on the logged spend)",
                p.input_per_mtok, p.output_per_mtok
            );
        }
        for (i, q) in f.quality.iter().enumerate() {
            let label = if i == 0 { "quality:" } else { "" };
            if q.stated() {
                let _ = writeln!(out, "  {label:<15}{} {}", q.class, q.estimate);
            } else {
                let _ = writeln!(
                    out,
                    "  {label:<15}{} not estimated: {} row(s), fewer than {}",
                    q.class,
                    q.estimate.n,
                    sim::logs::fit::MIN_QUALITY_ROWS
                );
            }
        }
        for (label, fit) in [("TTFT", &f.ttft), ("per token", &f.tpot)] {
            let Some(fit) = fit else { continue };
            let _ = writeln!(out, "  {label:<10} quantile    observed      fitted");
            for p in [0.5, 0.9, 0.95, 0.99] {
                let (o, m) = fit.quantiles(p);
                let _ = writeln!(out, "  {:<10} p{:<8} {o:>11.5} {m:>11.5}", "", (p * 100.0).round());
            }
        }
    }
    out
}
