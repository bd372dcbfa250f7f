//! Log readers, replay and fit: every sample format reads with the right mapping, the three encodings
//! round-trip, malformed rows are counted with their line numbers (and stop `--strict`), rate scaling,
//! sampling and looping do what they say, a generated log replays to the scenario's own metrics, trace-driven
//! replay reproduces logged latencies, and fit recovers known parameters.

mod common;

use common::root;
use sim::experiment::{self, ExperimentOptions};
use sim::logs::ReplaySettings;
use sim::logs::ingest::{Measured, Window, ingest};
use sim::logs::read::{LogReader, Outcome, RowErrors, Vocabulary};
use sim::logs::source::LogSource;
use sim::replay::attach;
use sim::scenario::{Overrides, Scenario};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    common::scratch("logs", name)
}

fn load(path: &Path, requests: Option<u64>, replications: Option<u32>) -> sim::scenario::Compiled {
    let mut s = Scenario::load(path).expect("scenario loads");
    Overrides { seed: None, requests, replications }.apply(&mut s);
    s.compile(path).expect("scenario compiles")
}

fn read_all(reader: &LogReader) -> (Vec<sim::logs::read::LogRow>, Vocabulary, RowErrors) {
    let (mut vocab, mut errors, mut rows) = (Vocabulary::default(), RowErrors::default(), Vec::new());
    reader.for_each(false, &mut vocab, &mut errors, |r| rows.push(r)).expect("reads");
    (rows, vocab, errors)
}

fn gen_log(scenario: &Path, rows: u64, out: &Path) {
    let model = load(scenario, Some(rows), None);
    sim::gen_log::generate(&model, 0, out).expect("gen-log writes");
}

#[test]
fn every_sample_format_is_read_with_its_mapping() {
    let logs = root().join("scenarios/logs");
    let replay_cfg = Scenario::load(&root().join("scenarios/replay.toml")).expect("replay scenario").replay;
    let cases = [
        ("litellm-spend-logs.csv", "litellm"),
        ("portkey-export.jsonl", "portkey"),
        ("azure-llm-inference-trace.csv", "azure"),
        ("burstgpt.csv", "burstgpt"),
        ("custom-gateway.csv", "generic"),
    ];
    for (file, format) in cases {
        let reader = sim::logs::open(&logs.join(file), None, replay_cfg.as_ref()).expect("opens");
        assert_eq!(reader.format.name, format, "{file}");
        let (rows, vocab, errors) = read_all(&reader);
        assert_eq!(rows.len(), 40, "{file}");
        assert_eq!(errors.total(), 0, "{file}: {errors:?}");
        assert!(rows.iter().all(|r| r.input_tokens > 0), "{file}: prompt tokens mapped");
        match format {
            "litellm" => {
                assert!(rows.iter().all(|r| r.latency.is_some() && r.cost.is_some()));
                assert!(rows.iter().filter(|r| r.outcome == Outcome::Ok).all(|r| r.ttft.is_some_and(|t| t > 0)));
                assert!(vocab.classes.contains(&"code".to_string()), "first request tag is the class");
                assert!(vocab.endpoints.contains(&"claude-sonnet-4".to_string()));
                assert!(vocab.templates.iter().any(|(_, m)| m.iter().any(|(k, _)| k == "user")), "user metadata");
            }
            "portkey" => {
                // Cost in cents, response time in milliseconds.
                let r = rows.iter().find(|r| r.outcome == Outcome::Ok).expect("a success");
                assert!(r.cost.is_some_and(|c| c > 0.0 && c < 0.1), "{:?}", r.cost);
                assert!(r.latency.is_some_and(|l| l > 100_000_000 && l < 120_000_000_000));
                assert!(rows.iter().any(|r| matches!(r.outcome, Outcome::Failed(_))));
            }
            "azure" => {
                assert!(rows.iter().all(|r| r.latency.is_none() && r.outcome == Outcome::Unknown));
                assert!(rows.windows(2).all(|w| w[0].arrival <= w[1].arrival));
            }
            "burstgpt" => {
                // A response of 0 tokens is a failure.
                for r in &rows {
                    assert_eq!(r.outcome == Outcome::Ok, r.output_tokens > 0);
                }
                assert!(vocab.classes.contains(&"Conversation log".to_string()));
            }
            _ => {
                // Epoch milliseconds and a latency in milliseconds, mapped in scenarios/replay.toml.
                assert!(rows[0].arrival > 1_700_000_000_000_000_000);
                assert!(rows.iter().all(|r| r.latency.is_some_and(|l| l > 100_000_000)));
                assert!(vocab.templates.iter().any(|(_, m)| m.iter().any(|(k, v)| k == "tenant" && v == "acme")));
            }
        }
    }
}

#[test]
fn csv_jsonl_and_parquet_encodings_read_the_same_rows() {
    let dir = scratch("encodings");
    let scenario = root().join("scenarios/quickstart.toml");
    let mut all = Vec::new();
    for ext in ["csv", "jsonl", "parquet"] {
        let out = dir.join(format!("log.{ext}"));
        gen_log(&scenario, 3000, &out);
        let reader = LogReader::open(&out, None, None).expect("opens");
        assert_eq!(reader.format.name, "generic");
        let (rows, vocab, errors) = read_all(&reader);
        assert_eq!(errors.total(), 0);
        let view: Vec<_> = rows
            .iter()
            .map(|r| {
                let ep = r.endpoint.map(|e| vocab.endpoints[e as usize].clone());
                (r.arrival, r.input_tokens, r.output_tokens, vocab.classes[r.class as usize].clone(), ep, r.cache_key)
            })
            .collect();
        assert_eq!(view.len(), 3000);
        all.push(view);
    }
    assert_eq!(all[0], all[1], "CSV and JSONL differ");
    assert_eq!(all[0], all[2], "CSV and Parquet differ");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_rows_are_counted_with_their_lines_and_strict_stops_at_the_first() {
    let dir = scratch("malformed");
    let log = dir.join("bad.csv");
    std::fs::write(
        &log,
        "arrival_s,input_tokens,output_tokens,status\n\
         0.5,100,20,ok\n\
         ,100,20,ok\n\
         yesterday,100,20,ok\n\
         1.5,-3,20,ok\n\
         2.0,lots,20,ok\n\
         2.5,100,20,teapot\n\
         3.0,100,20,503\n",
    )
    .expect("write");
    let reader = LogReader::open(&log, None, None).expect("opens");
    let (rows, _, errors) = read_all(&reader);
    assert_eq!(rows.len(), 2, "two good rows");
    assert_eq!(errors.total(), 5);
    assert_eq!(errors.counts["missing arrival time"], 1);
    assert_eq!(errors.counts["unparsable time"], 1);
    assert_eq!(errors.counts["negative or non-numeric tokens"], 2);
    assert_eq!(errors.counts["unknown status"], 1);
    assert_eq!(errors.examples[0].0, "line 3");
    assert_eq!(errors.examples[4].0, "line 7");
    let report = errors.render(&log, 7);
    assert!(report.contains("5 of 7 rows skipped") && report.contains("line 4: unparsable time"), "{report}");

    let mut v = Vocabulary::default();
    let mut e = RowErrors::default();
    let err = reader.for_each(true, &mut v, &mut e, |_| {}).expect_err("strict");
    let msg = err.to_string();
    assert!(msg.contains("bad.csv") && msg.contains("line 3") && msg.contains("missing arrival time"), "{msg}");

    // Through the CLI: the run still completes, and the counts are in the report.
    let out = Command::new(env!("CARGO_BIN_EXE_routesim"))
        .args(["replay", "scenarios/replay.toml", "--log"])
        .arg(&log)
        .args(["--replications", "1", "--out"])
        .arg(dir.join("out"))
        .current_dir(root())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("5 of 7 rows skipped as malformed"), "{stderr}");
    let strict = Command::new(env!("CARGO_BIN_EXE_routesim"))
        .args(["replay", "scenarios/replay.toml", "--strict", "--log"])
        .arg(&log)
        .args(["--out"])
        .arg(dir.join("out2"))
        .current_dir(root())
        .output()
        .expect("runs");
    assert_eq!(strict.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("line 3"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn short_and_long_rows_and_incomplete_json_objects_are_malformed() {
    let dir = scratch("short");
    // The Azure trace's header has three columns; an interrupted writer leaves a row of two.
    let csv = dir.join("azure.csv");
    std::fs::write(
        &csv,
        "TIMESTAMP,ContextTokens,GeneratedTokens\n\
         2023-11-16 18:00:00.10,402,20\n\
         2023-11-16 18:00:00.98,402\n\
         2023-11-16 18:00:01.50,100,30,7\n\
         2023-11-16 18:00:02.00,120,40\n",
    )
    .expect("write");
    let reader = LogReader::open(&csv, None, None).expect("opens");
    assert_eq!(reader.format.name, "azure");
    let (rows, _, errors) = read_all(&reader);
    assert_eq!(rows.len(), 2, "only the complete rows: {errors:?}");
    assert_eq!(rows[0].output_tokens, 20);
    assert_eq!(rows[1].output_tokens, 40);
    assert_eq!(errors.counts["short row"], 1);
    assert_eq!(errors.counts["long row"], 1);
    assert_eq!(errors.examples[0].0, "line 3");
    assert!(errors.examples[0].2.contains("2 fields, the header has 3"), "{errors:?}");
    assert_eq!(errors.examples[1].0, "line 4");
    let err = reader.for_each(true, &mut Vocabulary::default(), &mut RowErrors::default(), |_| {}).expect_err("strict");
    assert!(err.to_string().contains("line 3: short row"), "{err}");

    // JSONL: a line cut short is not JSON, an object without a mapped field is incomplete, null is "not logged".
    let jsonl = dir.join("log.jsonl");
    std::fs::write(
        &jsonl,
        "{\"arrival_s\": 0.5, \"input_tokens\": 10, \"output_tokens\": 5}\n\
         {\"arrival_s\": 1.0, \"input_tokens\": 10}\n\
         {\"arrival_s\": 1.5, \"input_tokens\": 10, \"output_tokens\": null}\n\
         \n\
         [1, 2]\n\
         {\"arrival_s\": 2.0, \"input_tok",
    )
    .expect("write");
    let reader = LogReader::open(&jsonl, None, None).expect("opens");
    let (rows, _, errors) = read_all(&reader);
    assert_eq!(rows.len(), 2, "{errors:?}");
    assert_eq!((rows[0].output_tokens, rows[1].output_tokens), (5, 0));
    assert_eq!(errors.counts["missing field"], 1);
    assert_eq!(errors.counts["not a JSON object"], 1);
    assert_eq!(errors.counts["invalid JSON"], 1);
    let lines: Vec<&str> = errors.examples.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(lines, ["line 2", "line 5", "line 6"]);
    assert!(errors.examples[0].2.contains("output_tokens"), "{errors:?}");
    let err = reader.for_each(true, &mut Vocabulary::default(), &mut RowErrors::default(), |_| {}).expect_err("strict");
    assert!(err.to_string().contains("line 2: missing field"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_long_csv_is_read_in_order_with_every_malformed_row_at_its_line() {
    // Large enough to span several of the reader's batches (records are split on a second thread): rows
    // come out in file order, and malformed rows keep their own line numbers wherever the batches break.
    let dir = scratch("long-csv");
    let csv = dir.join("azure.csv");
    let n = 20_000u64;
    let bad: [u64; 4] = [1, 4096, 4097, 19_999];
    let mut text = String::from("TIMESTAMP,ContextTokens,GeneratedTokens\n");
    for i in 0..n {
        let (s, ms) = (i / 1000, i % 1000);
        if bad.contains(&i) {
            text.push_str(&format!("2023-11-16 18:{:02}:{:02}.{ms:03},{i}\n", s / 60, s % 60));
        } else {
            text.push_str(&format!("2023-11-16 18:{:02}:{:02}.{ms:03},{i},{}\n", s / 60, s % 60, i % 97 + 1));
        }
    }
    std::fs::write(&csv, text).expect("write");
    let reader = LogReader::open(&csv, None, None).expect("opens");
    let (rows, _, errors) = read_all(&reader);
    assert_eq!(rows.len() as u64, n - bad.len() as u64);
    let inputs: Vec<u64> = rows.iter().map(|r| r.input_tokens as u64).collect();
    let expected: Vec<u64> = (0..n).filter(|i| !bad.contains(i)).collect();
    assert_eq!(inputs, expected, "rows in file order");
    assert_eq!(errors.counts["short row"], bad.len() as u64);
    let lines: Vec<String> = errors.examples.iter().map(|e| e.0.clone()).collect();
    let want: Vec<String> = bad.iter().map(|i| format!("line {}", i + 2)).collect();
    assert_eq!(lines, want[..lines.len()], "line numbers of the first examples");
    let err = reader.for_each(true, &mut Vocabulary::default(), &mut RowErrors::default(), |_| {}).expect_err("strict");
    assert!(err.to_string().contains("line 3: short row"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_says_how_much_of_the_log_the_warm_up_leaves_out_and_warmup_0_measures_it_all() {
    let dir = scratch("warmup");
    // Twenty minutes of traffic, one request a second; the quickstart's warm-up is ten minutes.
    let log = dir.join("twenty-minutes.csv");
    let mut text = String::from("arrival_s,input_tokens,output_tokens\n");
    for i in 0..1200 {
        text.push_str(&format!("{i}.25,200,50\n"));
    }
    std::fs::write(&log, text).expect("write");
    let replay = |extra: &[&str], out: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_routesim"))
            .args(["replay", "scenarios/quickstart.toml", "--policies", "round-robin", "--replications", "2"])
            .args(extra)
            .arg("--log")
            .arg(&log)
            .arg("--out")
            .arg(dir.join(out))
            .current_dir(root())
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let summary = std::fs::read_to_string(dir.join(out).join("summary.csv")).expect("summary");
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned(), summary)
    };
    let (stdout, stderr, summary) = replay(&[], "default");
    assert!(stdout.contains("1200 of 1200 rows, 0 malformed, 600 measured after a warm-up of 600s"), "{stdout}");
    assert!(stderr.contains("leaves 600 of the 1200 replayed rows (50%) out of the measurements"), "{stderr}");
    assert!(stderr.contains("--warmup 0"), "{stderr}");
    let requests = |summary: &str| -> f64 {
        let header: Vec<&str> = summary.lines().next().expect("header").split(',').collect();
        let col = header.iter().position(|h| *h == "requests").expect("requests column");
        summary.lines().nth(1).expect("a row").split(',').nth(col).expect("value").parse().expect("number")
    };
    assert_eq!(requests(&summary), 600.0, "the simulator measures the rows the header says");

    let (stdout, stderr, summary) = replay(&["--warmup", "0"], "all");
    assert!(stdout.contains("1200 measured after a warm-up of 0s"), "{stdout}");
    assert!(!stderr.contains("out of the measurements"), "{stderr}");
    assert_eq!(requests(&summary), 1200.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_format_lists_the_columns_the_file_has_and_needs() {
    let litellm = root().join("scenarios/logs/litellm-spend-logs.csv");
    let e = LogReader::open(&litellm, Some("azure"), None).expect_err("wrong format").to_string();
    assert!(e.contains("needs the column(s) TIMESTAMP") && e.contains("startTime, endTime"), "{e}");
    let e = LogReader::open(&litellm, Some("splunk"), None).expect_err("unknown format").to_string();
    assert!(e.contains("expected one of litellm, portkey, azure, burstgpt, generic"), "{e}");
    let dir = scratch("undetectable");
    let log = dir.join("odd.csv");
    std::fs::write(&log, "ts,in\n1,2\n").expect("write");
    let e = LogReader::open(&log, None, None).expect_err("undetectable").to_string();
    assert!(e.contains("(ts, in)") && e.contains("[replay.columns]"), "{e}");
    // A scenario's own mapping must name columns the file has: a typo is an error, not a silent gap.
    let cfg: sim::logs::ReplayConfig =
        toml::from_str("[columns]\narrival = \"ts\"\ninput_tokens = \"inn\"\n").expect("config");
    let e = sim::logs::open(&log, None, Some(&cfg)).expect_err("misspelt column").to_string();
    assert!(e.contains("needs the column(s) inn") && e.contains("the file has: ts, in"), "{e}");
    // An epoch column read as seconds since the start.
    let epoch = dir.join("epoch.csv");
    std::fs::write(&epoch, "arrival_s,input_tokens\n1741010402.5,10\n1741010403.5,10\n").expect("write");
    let reader = LogReader::open(&epoch, None, None).expect("opens");
    let e = ingest(&reader, Window { from: 0, to: None }, Measured::default(), 1_000_000_000, false, &dir.join("s"))
        .expect_err("epoch as relative")
        .to_string();
    assert!(e.contains("looks like an epoch time") && e.contains("time_format"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rows_out_of_order_are_sorted_within_the_reorder_window_and_counted_beyond_it() {
    let dir = scratch("reorder");
    let log = dir.join("shuffled.csv");
    // Written by end time: arrivals 0..9 s with latencies making them out of order by up to 5 s, then one
    // row 100 s late.
    let mut text = String::from("arrival_s,input_tokens,output_tokens\n");
    for a in [3, 1, 0, 5, 2, 4, 9, 7, 8, 6] {
        text.push_str(&format!("{a}.0,10,10\n"));
    }
    text.push_str("200.0,10,10\n1.5,10,10\n");
    std::fs::write(&log, text).expect("write");
    let reader = LogReader::open(&log, None, None).expect("opens");
    let spill = dir.join("spill");
    let window = Window { from: 0, to: None };
    let got = ingest(&reader, window, Measured::default(), 10_000_000_000, false, &spill).expect("ingests");
    assert_eq!(got.rows, 11);
    assert_eq!(got.errors.counts["out of order by more than the reorder window"], 1);
    assert_eq!(got.errors.examples[0].0, "line 13");
    // Everything in the window: nothing late.
    let all = ingest(&reader, window, Measured::default(), 1_000_000_000_000, false, &spill).expect("ingests");
    assert_eq!((all.rows, all.errors.total()), (12, 0));
    // Newest first: most rows would be dropped, so that is an error that says why.
    let newest_first = dir.join("newest-first.csv");
    let mut text = String::from("arrival_s,input_tokens,output_tokens\n");
    for a in (0..100).rev() {
        text.push_str(&format!("{a}.0,10,10\n"));
    }
    std::fs::write(&newest_first, text).expect("write");
    let reader = LogReader::open(&newest_first, None, None).expect("opens");
    let e = ingest(&reader, window, Measured::default(), 10_000_000_000, false, &spill).expect_err("descending");
    assert!(e.to_string().contains("sorted newest first"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn scale_sample_and_loop_reshape_the_replayed_traffic() {
    let dir = scratch("scale");
    let scenario = root().join("scenarios/quickstart.toml");
    let log = dir.join("log.csv");
    gen_log(&scenario, 5000, &log);
    let arrivals = |settings: ReplaySettings, replication: u32| {
        let mut model = load(&scenario, None, None);
        let _keep = attach(&mut model, &log, &settings, &dir).expect("attaches");
        let input = model.replay.as_ref().expect("replay input");
        let mut src = LogSource::new(input, model.seed, replication);
        let mut out = Vec::new();
        while let Some(a) = src.next() {
            out.push(a.at);
        }
        out
    };
    let base = arrivals(ReplaySettings::default(), 0);
    assert_eq!(base.len(), 5000);
    let fast = arrivals(ReplaySettings { scale: 2.0, ..Default::default() }, 0);
    assert_eq!(fast.len(), 5000);
    for (a, b) in base.iter().zip(&fast) {
        assert!((*a as f64 / 2.0 - *b as f64).abs() <= 1.0, "{a} / 2 != {b}");
    }
    let half = arrivals(ReplaySettings { sample: 0.5, ..Default::default() }, 0);
    assert!((2300..2700).contains(&half.len()), "{}", half.len());
    assert_eq!(
        half,
        arrivals(ReplaySettings { sample: 0.5, ..Default::default() }, 0),
        "same replication, same sample"
    );
    assert_ne!(half, arrivals(ReplaySettings { sample: 0.5, ..Default::default() }, 1), "replications differ");
    let twice = arrivals(ReplaySettings { loops: 2, ..Default::default() }, 0);
    assert_eq!(twice.len(), 10_000);
    assert!(twice.windows(2).all(|w| w[0] <= w[1]), "the second lap follows the first");
    assert!(twice[5000] > base[4999]);
    let windowed = arrivals(
        ReplaySettings { window: Window { from: 60_000_000_000, to: Some(120_000_000_000) }, ..Default::default() },
        0,
    );
    let expected = base.iter().filter(|&&t| (60_000_000_000..120_000_000_000).contains(&t)).count();
    assert_eq!(windowed.len(), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replaying_a_generated_log_reproduces_the_scenarios_metrics() {
    let dir = scratch("reproduce");
    let scenario = root().join("scenarios/quickstart.toml");
    let log = dir.join("log.parquet");
    gen_log(&scenario, 20_000, &log);
    let synthetic = load(&scenario, Some(20_000), Some(1));
    let all: Vec<usize> = (0..synthetic.scenario.policies.len()).collect();
    let run = experiment::run(&synthetic, &all, &ExperimentOptions::default()).expect("runs");
    let run_report = experiment::report(&synthetic, &run);

    let mut replayed = load(&scenario, None, Some(1));
    let ingested = attach(&mut replayed, &log, &ReplaySettings::default(), &dir).expect("attaches");
    let rep = experiment::run(&replayed, &all, &ExperimentOptions::default()).expect("replays");
    let rep_report = experiment::report(&replayed, &rep);
    for (a, b) in run_report.rows.iter().zip(&rep_report.rows) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "policy {}", a.policy);
    }
    // The log was written by the first policy: "as logged" is that policy's own result.
    let first = &run_report.rows[0];
    let logged = &ingested.as_logged;
    assert_eq!(logged.requests.mean, first.requests.mean);
    assert_eq!(logged.latency_p95_s.mean, first.latency_p95_s.mean);
    assert!((logged.cost_usd.mean - first.cost_usd.mean).abs() < 1e-6 * first.cost_usd.mean);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn trace_driven_replay_reuses_logged_latencies_on_the_logged_endpoint() {
    let dir = scratch("trace");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/tests/data/fit-known.toml");
    let log = dir.join("log.csv");
    gen_log(&scenario, 4000, &log);
    // Round-robin sends request i where the log says it went, so every first attempt reuses the log.
    let mut model = load(&scenario, None, Some(2));
    let settings = ReplaySettings { trace_driven: true, ..Default::default() };
    let ingested = attach(&mut model, &log, &settings, &dir).expect("attaches");
    let exp = experiment::run(&model, &[0], &ExperimentOptions::default()).expect("replays");
    let report = experiment::report(&model, &exp);
    let row = &report.rows[0];
    let logged = &ingested.as_logged;
    assert_eq!(row.ci95_free_p95(), logged.latency_p95_s.mean);
    assert_eq!(row.success_rate.mean, logged.success_rate.mean);
    // A log without latencies cannot drive a trace.
    let out = Command::new(env!("CARGO_BIN_EXE_routesim"))
        .args([
            "replay",
            "scenarios/replay.toml",
            "--trace-driven",
            "--log",
            "scenarios/logs/azure-llm-inference-trace.csv",
        ])
        .args(["--out"])
        .arg(dir.join("azure"))
        .current_dir(root())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trace-driven replay needs"));
    // Counterfactual replay draws new service times instead: not the logged ones.
    let mut model = load(&scenario, None, Some(2));
    let _k = attach(&mut model, &log, &ReplaySettings::default(), &dir).expect("attaches");
    let exp = experiment::run(&model, &[0], &ExperimentOptions::default()).expect("replays");
    let other = &experiment::report(&model, &exp).rows[0];
    assert_ne!(other.latency_p95_s.mean, logged.latency_p95_s.mean);
    let _ = std::fs::remove_dir_all(&dir);
}

trait P95 {
    fn ci95_free_p95(&self) -> f64;
}

impl P95 for sim::report::PolicyRow {
    /// Trace-driven runs replay the same latencies in every replication: the p95 has no spread.
    fn ci95_free_p95(&self) -> f64 {
        assert_eq!(self.latency_p95_s.ci95, Some(0.0));
        self.latency_p95_s.mean
    }
}

#[test]
fn fit_recovers_known_parameters_and_its_output_loads_as_endpoints() {
    let dir = scratch("fit");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/tests/data/fit-known.toml");
    let log = dir.join("log.csv");
    gen_log(&scenario, 20_000, &log);
    let reader = LogReader::open(&log, None, None).expect("opens");
    let (fits, errors, read) = sim::logs::fit::fit_log(&reader, false).expect("fits");
    assert_eq!((read, errors.total()), (20_000, 0));
    use sim::logs::fit::Family;
    let fast = fits.iter().find(|f| f.name == "fast").expect("fast fitted");
    let slow = fits.iter().find(|f| f.name == "slow").expect("slow fitted");
    // Stated tolerance: 3% on medians and means, 10% on shapes and sigmas (about 10,000 samples each).
    let close = |got: f64, want: f64, tol: f64| (got / want - 1.0).abs() < tol;
    match fast.ttft.as_ref().expect("ttft").family {
        Family::Lognormal { mu, sigma } => assert!(close(mu.exp(), 0.35, 0.03) && close(sigma, 0.4, 0.1)),
        other => panic!("fast TTFT should be lognormal, got {other:?}"),
    }
    match fast.tpot.as_ref().expect("tpot").family {
        Family::Gamma { shape, scale } => assert!(close(shape * scale, 0.009, 0.03) && close(shape, 16.0, 0.1)),
        other => panic!("fast TPOT should be gamma, got {other:?}"),
    }
    match slow.ttft.as_ref().expect("ttft").family {
        Family::Gamma { shape, scale } => assert!(close(shape * scale, 0.9, 0.03) && close(shape, 3.0, 0.1)),
        other => panic!("slow TTFT should be gamma, got {other:?}"),
    }
    match slow.tpot.as_ref().expect("tpot").family {
        Family::Lognormal { mu, sigma } => assert!(close(mu.exp(), 0.016, 0.03) && close(sigma, 0.2, 0.1)),
        other => panic!("slow TPOT should be lognormal, got {other:?}"),
    }
    assert!(fast.ttft.as_ref().is_some_and(|f| f.ks < 0.03));
    assert!((fast.errors.server - 0.02).abs() < 0.005, "{}", fast.errors.server);
    let price = fast.price.expect("price from spend");
    assert!(close(price.input_per_mtok, 0.15, 1e-3) && close(price.output_per_mtok, 0.60, 1e-3), "{price:?}");

    // Without TTFT, latency is regressed on output tokens: the slope is the mean time per token.
    let no_ttft = dir.join("no-ttft.csv");
    let text = std::fs::read_to_string(&log).expect("log");
    let dropped: String = text
        .lines()
        .map(|line| {
            let mut cells: Vec<&str> = line.split(',').collect();
            cells.remove(6); // ttft_s
            cells.join(",") + "\n"
        })
        .collect();
    assert!(dropped.starts_with("request_id,arrival_s,class,input_tokens,output_tokens,endpoint,latency_s"));
    std::fs::write(&no_ttft, dropped).expect("write");
    let reader = LogReader::open(&no_ttft, None, None).expect("opens");
    let (fits, _, _) = sim::logs::fit::fit_log(&reader, false).expect("fits");
    let fast = fits.iter().find(|f| f.name == "fast").expect("fast fitted");
    assert!(fast.tpot.is_none());
    let slope = fast.slope.expect("regression slope");
    assert!(close(slope, 0.009, 0.05), "slope {slope}");
    // Rows without a status still inform latencies (not the error rates).
    let no_status = dir.join("no-status.csv");
    let kept: String = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(|line| line.split(',').take(8).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    assert!(kept.ends_with(&format!("{}\n", kept.lines().last().unwrap_or_default())));
    std::fs::write(&no_status, kept).expect("write");
    let reader = LogReader::open(&no_status, None, None).expect("opens");
    let (fits, _, _) = sim::logs::fit::fit_log(&reader, false).expect("fits");
    let fast_ns = fits.iter().find(|f| f.name == "fast").expect("fast fitted");
    assert!(fast_ns.ttft.as_ref().is_some_and(|f| f.n > 9000) && fast_ns.errors.server == 0.0);

    // `routesim fit` writes providers.toml and QQ plots; a scenario includes it as its endpoints.
    let stdout = common::fit(&log, &dir.join("providers.toml"));
    assert!(stdout.contains("KS") && stdout.contains("p95"), "{stdout}");
    for f in ["providers.toml", "qq-fast.png", "qq-fast.svg", "qq-slow.png"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let with_fit = dir.join("scenario.toml");
    std::fs::write(
        &with_fit,
        "name = \"from-fit\"\nrequests = 2000\ninclude_endpoints = [\"providers.toml\"]\n\n[traffic]\nrate = 20.0\n\n\
         [[traffic.classes]]\nname = \"chat\"\ninput_tokens = { dist = \"constant\", value = 500 }\n\
         output_tokens = { dist = \"constant\", value = 200 }\n\n[[policies]]\nname = \"split\"\nkind = \"round-robin\"\n",
    )
    .expect("write");
    let model = load(&with_fit, Some(2000), Some(1));
    let ids: Vec<String> = model.endpoint_ids();
    assert_eq!(ids, vec!["fast".to_string(), "slow".to_string()]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_first_token_at_the_end_is_no_ttft() {
    let dir = scratch("nonstreaming");
    let log = dir.join("litellm.csv");
    std::fs::write(
        &log,
        "request_id,startTime,endTime,completionStartTime,model,prompt_tokens,completion_tokens,spend,status\n\
         a,2025-03-03T14:00:00.000Z,2025-03-03T14:00:02.000Z,2025-03-03T14:00:02.000Z,gpt-4o-mini,10,20,0.001,success\n\
         b,2025-03-03T14:00:01.000Z,2025-03-03T14:00:03.000Z,2025-03-03T14:00:01.400Z,gpt-4o-mini,10,20,0.001,success\n",
    )
    .expect("write");
    let reader = LogReader::open(&log, None, None).expect("opens");
    assert_eq!(reader.format.name, "litellm");
    let (rows, _, _) = read_all(&reader);
    assert_eq!(rows[0].ttft, None, "non-streaming: completionStartTime = endTime");
    assert_eq!(rows[1].ttft, Some(400_000_000));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn typed_parquet_columns_are_read_too() {
    // A Parquet export with a real datetime column and integer tokens, mapped in a scenario.
    use polars::prelude::*;
    let dir = scratch("typed");
    let path = dir.join("typed.parquet");
    let base_ms = 1_735_689_600_000i64; // 2025-01-01T00:00:00Z
    let ts = Column::new("ts".into(), vec![base_ms, base_ms + 1500, base_ms + 250])
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)))
        .expect("datetime");
    let mut df = DataFrame::new_infer_height(vec![
        ts,
        Column::new("prompt".into(), vec![10i64, 20, 30]),
        Column::new("took".into(), vec![0.5f64, 1.25, 2.0]),
    ])
    .expect("frame");
    ParquetWriter::new(std::fs::File::create(&path).expect("create")).finish(&mut df).expect("write");
    let cfg: sim::logs::ReplayConfig = toml::from_str(
        "time_format = \"rfc3339\"\n[columns]\narrival = \"ts\"\ninput_tokens = \"prompt\"\nlatency = \"took\"\n",
    )
    .expect("config");
    let reader = sim::logs::open(&path, None, Some(&cfg)).expect("opens");
    let (rows, _, errors) = read_all(&reader);
    assert_eq!(errors.total(), 0, "{errors:?}");
    let got: Vec<(i64, u32, Option<i64>)> = rows.iter().map(|r| (r.arrival, r.input_tokens, r.latency)).collect();
    let ns = base_ms * 1_000_000;
    assert_eq!(
        got,
        vec![
            (ns, 10, Some(500_000_000)),
            (ns + 1_500_000_000, 20, Some(1_250_000_000)),
            (ns + 250_000_000, 30, Some(2_000_000_000))
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
