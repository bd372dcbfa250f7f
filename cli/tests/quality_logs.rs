//! Answer quality in logs (issue 30): the optional `quality` column (read, malformed values counted with their
//! line), the "as logged" quality of a replay, accuracies fitted per endpoint and class with their intervals,
//! client feedback rows of a gateway log joined to their requests, and matrix logs (every prompt's outcome on every model): their errors, and a replay whose quality and cost,
//! with unlimited capacity, are exactly those computed by hand from the file.

mod common;

use common::root;
use sim::logs::ingest::{Measured, Window, ingest};
use sim::logs::read::{LogReader, QUALITY_NOT_A_NUMBER, QUALITY_OUT_OF_RANGE, RowErrors, Vocabulary};
use sim::scenario::{Overrides, Scenario};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    common::scratch("quality-logs", name)
}

fn read_all(reader: &LogReader) -> (Vec<sim::logs::read::LogRow>, RowErrors) {
    let (mut vocab, mut errors, mut rows) = (Vocabulary::default(), RowErrors::default(), Vec::new());
    reader.for_each(false, &mut vocab, &mut errors, |r| rows.push(r)).expect("reads");
    (rows, errors)
}

/// A deterministic uniform in [0, 1) from two integers (SplitMix64), for made-up outcomes.
fn unit(a: u64, b: u64) -> f64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
fn the_quality_column_is_read_and_a_bad_value_is_a_malformed_row_at_its_line() {
    let dir = scratch("column");
    // The gateway's JSONL with its trailing `quality` and `cascade_stage` columns (both left out of a row
    // that no verifier scored).
    let jsonl = dir.join("gateway.jsonl");
    std::fs::write(
        &jsonl,
        "{\"request_id\":0,\"arrival_s\":0.5,\"class\":\"code\",\"endpoint\":\"a\",\"latency_s\":1.0,\"status\":\"ok\",\"cost_usd\":0.01,\"quality\":1,\"cascade_stage\":0}\n\
         {\"request_id\":1,\"arrival_s\":0.7,\"class\":\"code\",\"endpoint\":\"a\",\"latency_s\":1.0,\"status\":\"ok\",\"cost_usd\":0.01,\"quality\":0.25,\"cascade_stage\":1}\n\
         {\"request_id\":2,\"arrival_s\":0.9,\"class\":\"code\",\"endpoint\":\"a\",\"latency_s\":1.0,\"status\":\"server\",\"cost_usd\":0.0,\"quality\":null,\"cascade_stage\":null}\n\
         {\"request_id\":3,\"arrival_s\":1.1,\"class\":\"code\",\"endpoint\":\"a\",\"latency_s\":1.0,\"status\":\"ok\",\"cost_usd\":0.01,\"quality\":\"good\",\"cascade_stage\":0}\n\
         {\"request_id\":4,\"arrival_s\":1.3,\"class\":\"code\",\"endpoint\":\"a\",\"latency_s\":1.0,\"status\":\"ok\",\"cost_usd\":0.01,\"quality\":1.01,\"cascade_stage\":0}\n\
         {\"request_id\":5,\"arrival_s\":1.5,\"class\":\"code\",\"endpoint\":\"a\",\"latency_s\":1.0,\"status\":\"ok\",\"cost_usd\":0.01}\n",
    )
    .expect("write");
    let reader = LogReader::open(&jsonl, None, None).expect("opens");
    assert_eq!(reader.format.name, "generic");
    let (rows, errors) = read_all(&reader);
    let q: Vec<Option<f64>> = rows.iter().map(|r| r.quality).collect();
    // The gateway leaves `quality` out of the rows it did not score: not scored, not malformed.
    assert_eq!(q, [Some(1.0), Some(0.25), None, None]);
    assert_eq!(errors.total(), 2);
    assert_eq!(errors.counts.get(QUALITY_NOT_A_NUMBER), Some(&1));
    assert_eq!(errors.counts.get(QUALITY_OUT_OF_RANGE), Some(&1));
    assert_eq!(errors.examples[0].0, "line 4");
    assert!(errors.examples[0].2.contains("\"good\""), "{:?}", errors.examples);
    assert_eq!(errors.examples[1].0, "line 5");

    // A CSV log without the column (as written before quality existed) reads as before: no quality.
    let csv = dir.join("old.csv");
    std::fs::write(&csv, "request_id,arrival_s,class,endpoint,latency_s,status,cost_usd\n0,0.5,chat,a,1.0,ok,0.01\n")
        .expect("write");
    let (rows, errors) = read_all(&LogReader::open(&csv, None, None).expect("opens"));
    assert_eq!((rows.len(), rows[0].quality, errors.total()), (1, None, 0));

    // A scenario's own mapping names the column; NaN is not a number, -0.5 out of range.
    let mapped = dir.join("mine.csv");
    std::fs::write(&mapped, "t,score\n0.1,1\n0.2,NaN\n0.3,-0.5\n0.4,0\n").expect("write");
    let fmt = sim::logs::format::LogFormat {
        name: "generic".into(),
        columns: sim::logs::format::ColumnMap {
            arrival: "t".into(),
            quality: Some("score".into()),
            ..Default::default()
        },
        time: sim::logs::format::TimeFormat::RelativeS,
        cost_scale: 1.0,
        latency_scale: 1.0,
        strict: true,
    };
    let (rows, errors) = read_all(&LogReader::open(&mapped, None, Some(fmt)).expect("opens"));
    assert_eq!(rows.iter().map(|r| r.quality).collect::<Vec<_>>(), [Some(1.0), Some(0.0)]);
    assert_eq!(errors.counts.get(QUALITY_NOT_A_NUMBER), Some(&1));
    assert_eq!(errors.counts.get(QUALITY_OUT_OF_RANGE), Some(&1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_tallies_the_logged_quality_of_the_measured_rows_that_did_not_fail() {
    let dir = scratch("as-logged");
    let log = dir.join("log.csv");
    let mut text = String::from("arrival_s,endpoint,status,cost_usd,quality\n");
    let (mut scored, mut acceptable, mut sum, mut cost) = (0u64, 0u64, 0.0f64, 0.0f64);
    for i in 0..400u64 {
        let status = if i % 10 == 3 { "server" } else { "ok" };
        // Scores in tenths; failed rows carry one too, which must not count.
        let q = (unit(i, 1) * 11.0).floor() / 10.0;
        let q = q.min(1.0);
        let c = 0.001 * (1 + i % 3) as f64;
        text.push_str(&format!("{},a,{status},{c},{q}\n", i as f64 * 0.1));
        cost += c;
        if status == "ok" {
            scored += 1;
            sum += q;
            acceptable += u64::from(q >= 0.5);
        }
    }
    std::fs::write(&log, text).expect("write");
    let reader = LogReader::open(&log, None, None).expect("opens");
    let got = ingest(&reader, Window { from: 0, to: None }, Measured::default(), u64::MAX / 4, false, &dir.join("s"))
        .expect("ingests");
    let q = got.quality.as_ref().expect("the log has the column");
    assert_eq!((q.count(), q.acceptable()), (scored, acceptable));
    assert!(!q.is_binary());
    assert!((q.mean_score().value - sum / scored as f64).abs() < 1e-12);
    let (lo, hi) = sim::logs::quality::wilson(acceptable, scored);
    assert_eq!((q.acceptance().low, q.acceptance().high), (lo, hi));
    assert!((got.as_logged.cost_usd.mean - cost).abs() < 1e-9);
    let line = sim::replay::as_logged_quality(q, got.as_logged.cost_usd.mean);
    assert!(line.contains(&format!("{:.6} USD", cost / acceptable as f64)), "{line}");
    drop(got);

    // Without the column, no quality at all.
    let plain = dir.join("plain.csv");
    std::fs::write(&plain, "arrival_s,endpoint,status\n0.1,a,ok\n").expect("write");
    let reader = LogReader::open(&plain, None, None).expect("opens");
    let got = ingest(&reader, Window { from: 0, to: None }, Measured::default(), 1_000_000_000, false, &dir.join("p"))
        .expect("ingests");
    assert!(got.quality.is_none());
    drop(got);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fit_estimates_accuracy_per_endpoint_and_class_with_intervals_and_a_minimum_of_rows() {
    let dir = scratch("fit");
    let log = dir.join("log.csv");
    // Endpoint `strong`: code 0.8, chat 0.9; `weak`: code 0.4, chat 0.7, and only 12 `rare` rows.
    let truth = [("strong", "code", 0.8, 600u64), ("strong", "chat", 0.9, 600), ("weak", "code", 0.4, 600)];
    let mut text = String::from("arrival_s,endpoint,class,latency_s,ttft_s,output_tokens,status,quality\n");
    let mut counts: std::collections::BTreeMap<(&str, &str), (u64, u64)> = Default::default();
    let mut t = 0.0;
    let mut push = |ep: &'static str, class: &'static str, p: f64, i: u64, text: &mut String| {
        t += 0.05;
        let ok = unit(i, 7) < p;
        text.push_str(&format!("{t:.3},{ep},{class},1.2,0.3,100,ok,{}\n", u8::from(ok)));
        let c = counts.entry((ep, class)).or_default();
        c.0 += 1;
        c.1 += u64::from(ok);
    };
    let mut i = 0;
    for (ep, class, p, n) in truth {
        for _ in 0..n {
            i += 1;
            push(ep, class, p, i, &mut text);
        }
    }
    for _ in 0..12 {
        i += 1;
        push("weak", "rare", 0.7, i, &mut text);
    }
    // A failed row with a quality is not counted.
    text.push_str(&format!("{:.3},weak,code,1.0,0.3,100,server,1\n", t + 1.0));
    std::fs::write(&log, &text).expect("write");
    let reader = LogReader::open(&log, None, None).expect("opens");
    let (fits, errors, _) = sim::logs::fit::fit_log(&reader, false).expect("fits");
    assert_eq!(errors.total(), 0);
    for (ep, class, p, _) in truth {
        let fit = fits.iter().find(|f| f.name == ep).expect("endpoint fitted");
        let q = fit.quality.iter().find(|q| q.class == class).expect("class estimated");
        let (n, ok) = counts[&(ep, class)];
        // Exactly the hand count, and the true accuracy inside its 95% interval.
        assert_eq!(q.estimate.n, n);
        assert!((q.estimate.value - ok as f64 / n as f64).abs() < 1e-12);
        assert!(q.estimate.low <= p && p <= q.estimate.high, "{ep} {class}: {p} not in {:?}", q.estimate);
        assert!(q.stated());
        assert_eq!(fit.spec.quality.0[class], sim::logs::fit::rounded_accuracy(q.estimate.value));
    }
    let weak = fits.iter().find(|f| f.name == "weak").expect("weak");
    let rare = weak.quality.iter().find(|q| q.class == "rare").expect("rare reported");
    assert_eq!(rare.estimate.n, 12);
    assert!(!rare.stated() && !weak.spec.quality.0.contains_key("rare"));
    // `default` pools every class of the endpoint: weak's 600 code and 12 rare rows.
    let pooled = &weak.quality[0];
    assert_eq!((pooled.class.as_str(), pooled.estimate.n), ("default", 612));
    assert_eq!(sim::logs::fit::MIN_QUALITY_ROWS, 30);

    // `routesim fit` writes them as `quality = { ... }` with the intervals in a comment; the file loads.
    let stdout = common::fit(&log, &dir.join("providers.toml"));
    assert!(stdout.contains("rare not estimated: 12 row(s), fewer than 30"), "{stdout}");
    let written = std::fs::read_to_string(dir.join("providers.toml")).expect("providers.toml");
    assert!(written.contains("#   code: 0."), "{written}");
    assert!(written.contains("Wilson, n 600)"), "{written}");
    assert!(written.contains("#   rare: not estimated, 12 row(s)"), "{written}");
    let scenario = dir.join("scenario.toml");
    std::fs::write(
        &scenario,
        "name = \"from-fit\"\nrequests = 100\ninclude_endpoints = [\"providers.toml\"]\n\n[traffic]\nrate = 5.0\n\n\
         [[traffic.classes]]\nname = \"code\"\ninput_tokens = { dist = \"constant\", value = 500 }\n\
         output_tokens = { dist = \"constant\", value = 200 }\n\n[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n",
    )
    .expect("write");
    let s = Scenario::load(&scenario).expect("the fitted endpoints load");
    let strong = s.endpoints.iter().find(|e| e.id == "strong").expect("strong");
    let code = fits.iter().find(|f| f.name == "strong").unwrap().spec.quality.0["code"];
    assert_eq!(strong.quality.for_class(Some("code")), Some(code));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gateway request row (JSONL) with an optional judge score.
fn request_row(id: u64, endpoint: &str, class: &str, status: &str, judge: Option<f64>) -> String {
    let q = judge.map_or(String::new(), |q| format!(",\"quality\":{q},\"cascade_stage\":0"));
    format!(
        "{{\"request_id\":{id},\"arrival_s\":{},\"class\":\"{class}\",\"endpoint\":\"{endpoint}\",\"latency_s\":1.0,\
         \"status\":\"{status}\",\"cost_usd\":0.01{q}}}\n",
        id as f64 * 0.1
    )
}

/// A gateway feedback row (`POST /v1/feedback`).
fn feedback_row(id: u64, quality: &str) -> String {
    format!("{{\"request_id\":{id},\"feedback\":true,\"quality\":{quality},\"arrival_s\":99.0,\"time_unix_s\":1.0}}\n")
}

#[test]
fn feedback_rows_join_their_requests_by_id_the_latest_wins_and_unknown_ids_are_malformed() {
    let dir = scratch("feedback");
    let log = dir.join("gateway.jsonl");
    let text = [
        feedback_row(2, "true"),                      // line 1: before its request
        request_row(1, "a", "code", "ok", Some(0.9)), // line 2: a judge scored it
        request_row(2, "a", "code", "ok", None),      // line 3
        feedback_row(1, "0.2"),                       // line 4
        feedback_row(1, "1"),                         // line 5: the latest for 1, over the judge's 0.9
        request_row(3, "a", "code", "ok", Some(0.7)), // line 6: the judge's score stays
        feedback_row(77, "1"),                        // line 7: no request 77
        feedback_row(77, "0"),                        // line 8: nor here
        feedback_row(3, "3"),                         // line 9: out of range
        request_row(4, "a", "code", "ok", None),      // line 10: not scored
        feedback_row(2, "false"),                     // line 11: the latest for 2
    ]
    .concat();
    std::fs::write(&log, &text).expect("write");
    let reader = LogReader::open(&log, None, None).expect("opens");
    let (rows, errors) = read_all(&reader);
    let q: Vec<Option<f64>> = rows.iter().map(|r| r.quality).collect();
    assert_eq!(q, [Some(1.0), Some(0.0), Some(0.7), None], "feedback rows are not requests");
    // Rows are numbered over requests and malformed rows: a good feedback row is neither, the bad one is.
    assert_eq!(rows.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1, 2, 4]);
    assert_eq!(errors.counts.get(sim::logs::feedback::UNKNOWN_REQUEST), Some(&2));
    assert_eq!(errors.counts.get(QUALITY_OUT_OF_RANGE), Some(&1));
    assert_eq!(errors.total(), 3);
    let at: Vec<&str> = errors.examples.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(at, ["line 9", "line 7", "line 8"], "each with its line: {:?}", errors.examples);
    assert!(errors.examples[1].2.contains("request_id 77"), "{:?}", errors.examples);
    // With --strict the first malformed feedback row stops the read.
    let (mut vocab, mut errs) = (Vocabulary::default(), RowErrors::default());
    let e = reader.for_each(true, &mut vocab, &mut errs, |_| {}).expect_err("strict");
    assert!(e.to_string().contains("line 9: quality outside 0..=1"), "{e}");
    std::fs::write(&log, [request_row(1, "a", "code", "ok", None), feedback_row(5, "1")].concat()).expect("write");
    let (mut vocab, mut errs) = (Vocabulary::default(), RowErrors::default());
    let e =
        LogReader::open(&log, None, None).unwrap().for_each(true, &mut vocab, &mut errs, |_| {}).expect_err("strict");
    assert!(e.to_string().contains("line 2: feedback for an unknown request: request_id 5"), "{e}");

    // A log without feedback rows reads exactly as before (the `quality` column only where the judge scored).
    let plain = dir.join("plain.jsonl");
    std::fs::write(&plain, [request_row(1, "a", "code", "ok", None), request_row(2, "a", "code", "ok", None)].concat())
        .expect("write");
    let reader = LogReader::open(&plain, None, None).expect("opens");
    assert!(reader.format.columns.quality.is_none());
    let (rows, errors) = read_all(&reader);
    assert_eq!((rows.len(), rows[0].quality, errors.total()), (2, None, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_and_fit_read_accuracy_from_feedback_alone() {
    let dir = scratch("feedback-fit");
    let log = dir.join("gateway.jsonl");
    // 1,200 requests with no score in their rows; every answer rated by feedback, after all the requests (far
    // past the rows the reader learns the columns from), except request 0's rating, which comes first.
    let truth = [("strong", 0.85), ("weak", 0.55)];
    let (mut requests, mut ratings) = (String::new(), Vec::new());
    let mut counts = [(0u64, 0u64); 2];
    let mut cost = 0.0;
    for id in 0..1200u64 {
        let e = (id % 2) as usize;
        let failed = id % 25 == 7;
        requests.push_str(&request_row(id, truth[e].0, "chat", if failed { "server" } else { "ok" }, None));
        cost += 0.01;
        if !failed {
            let ok = unit(id, 11) < truth[e].1;
            ratings.push(feedback_row(id, if ok { "true" } else { "false" }));
            counts[e].0 += 1;
            counts[e].1 += u64::from(ok);
        }
    }
    let first = ratings.remove(0);
    std::fs::write(&log, [first, requests, ratings.concat()].concat()).expect("write");
    let reader = LogReader::open(&log, None, None).expect("opens");
    let (fits, errors, _) = sim::logs::fit::fit_log(&reader, false).expect("fits");
    assert_eq!(errors.total(), 0);
    for (e, (ep, p)) in truth.iter().enumerate() {
        let fit = fits.iter().find(|f| f.name == *ep).expect("endpoint fitted");
        let q = fit.quality.iter().find(|q| q.class == "chat").expect("class estimated");
        let (n, ok) = counts[e];
        assert_eq!(q.estimate.n, n, "{ep}: every rated answer, no failed request");
        assert!((q.estimate.value - ok as f64 / n as f64).abs() < 1e-12, "{ep}");
        assert!(q.estimate.low <= *p && *p <= q.estimate.high, "{ep}: {p} not in {:?}", q.estimate);
        assert_eq!(fit.spec.quality.0["chat"], sim::logs::fit::rounded_accuracy(q.estimate.value));
    }
    let got = ingest(&reader, Window { from: 0, to: None }, Measured::default(), u64::MAX / 4, false, &dir.join("s"))
        .expect("ingests");
    let q = got.quality.as_ref().expect("feedback gives the log quality");
    assert_eq!((q.count(), q.acceptable()), (counts[0].0 + counts[1].0, counts[0].1 + counts[1].1));
    assert!(q.is_binary());
    assert!((got.as_logged.cost_usd.mean - cost).abs() < 1e-9, "feedback rows are not requests: no cost of theirs");
    drop(got);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `routesim replay SCENARIO --matrix FILE` with `extra` arguments.
fn replay_matrix(scenario: &Path, matrix: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_routesim"))
        .arg("replay")
        .arg(scenario)
        .arg("--matrix")
        .arg(matrix)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("runs")
}

#[test]
fn a_matrix_log_missing_a_mapped_model_or_with_bad_cells_is_reported_by_file_row_and_field() {
    let dir = scratch("matrix-errors");
    let scenario = root().join("scenarios/matrix/routerbench.toml");
    let sample = std::fs::read_to_string(root().join("scenarios/matrix/routerbench-sample.csv")).expect("sample");
    // Drop one prompt's row for the mixtral model: an error naming the file, the prompt and the model.
    let holed: String = sample
        .lines()
        .filter(|l| !(l.starts_with("gsm8k-003,") && l.contains("mixtral")))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = dir.join("holed.csv");
    std::fs::write(&file, holed).expect("write");
    let out = replay_matrix(&scenario, &file, &dir.join("out1"), &["--replications", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("holed.csv")
            && stderr.contains("\"gsm8k-003\"")
            && stderr.contains("`mistralai/mixtral-8x7b-chat`"),
        "{stderr}"
    );
    // A score that is not a number, and a model no endpoint maps: counted with their lines, then the prompt
    // whose only mixtral row was bad lacks it.
    let mut lines: Vec<String> = sample.lines().map(str::to_string).collect();
    lines[2] = lines[2].replace(",1,0.000136", ",yes,0.000136");
    lines.push("mmlu-000,mmlu,some-other-model,1,0.001,10,1".into());
    let file = dir.join("bad.csv");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    let out = replay_matrix(&scenario, &file, &dir.join("out2"), &["--replications", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 3: quality is not a number: quality = \"yes\""), "{stderr}");
    assert!(stderr.contains("\"mmlu-000\"") && stderr.contains("`gpt-3.5-turbo-1106`"), "{stderr}");
    // --strict stops at the first bad row.
    let out = replay_matrix(&scenario, &file, &dir.join("out3"), &["--replications", "1", "--strict"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.csv: line 3: quality is not a number"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sample scenario's three endpoints with unlimited capacity and no failures, and four policies whose
/// choices are known: always gpt-4, the cheapest (mixtral: cheapest on input and output), by task class, and
/// the oracle (the cheapest whose real answer was acceptable).
/// The prices are NOT those the file's costs were computed with: a replay that billed the scenario's prices
/// instead of the file's costs would fail the test.
const UNLIMITED: &str = r#"
name = "matrix-unlimited"
requests = 50
seed = 7
replications = 2

[traffic]
rate = 5.0

[[traffic.classes]]
name = "mmlu"
input_tokens = { dist = "constant", value = 100 }
output_tokens = { dist = "constant", value = 1 }
complexity = 0.4

[[traffic.classes]]
name = "gsm8k"
input_tokens = { dist = "constant", value = 100 }
output_tokens = { dist = "constant", value = 100 }
complexity = 0.8

[[traffic.classes]]
name = "mbpp"
input_tokens = { dist = "constant", value = 100 }
output_tokens = { dist = "constant", value = 100 }
complexity = 0.9

[[endpoints]]
id = "gpt-4"
provider = "openai"
model = "gpt-4-1106-preview"
price = { input_per_mtok = 5.0, output_per_mtok = 15.0 }
slots = 100000
ttft = { dist = "lognormal", median = "700ms", sigma = 0.4 }
tpot = { dist = "lognormal", median = "25ms", sigma = 0.2 }

[[endpoints]]
id = "gpt-3.5"
provider = "openai"
model = "gpt-3.5-turbo-1106"
price = { input_per_mtok = 0.5, output_per_mtok = 1.0 }
slots = 100000
ttft = { dist = "lognormal", median = "400ms", sigma = 0.4 }
tpot = { dist = "lognormal", median = "12ms", sigma = 0.2 }

[[endpoints]]
id = "mixtral"
provider = "together"
model = "mistralai/mixtral-8x7b-chat"
price = { input_per_mtok = 0.2, output_per_mtok = 0.3 }
slots = 100000
ttft = { dist = "lognormal", median = "300ms", sigma = 0.5 }
tpot = { dist = "lognormal", median = "10ms", sigma = 0.3 }

[[policies]]
name = "always-gpt-4"
kind = "fallback"
targets = ["gpt-4"]

[[policies]]
name = "cost"
kind = "cost"

[[policies]]
name = "by-task"
kind = "conditional"
rules = [{ when = { complexity = { "$gte" = 0.7 } }, target = "gpt-4" }]
default = "mixtral"

[[policies]]
name = "oracle"
kind = "oracle"
"#;

/// The model a policy sends a prompt to, by hand.
type Chooser<'a> = dyn Fn(&Cell) -> &'static str + 'a;

/// One row of the matrix sample.
struct Cell {
    prompt: String,
    class: String,
    model: String,
    score: f64,
    cost: f64,
    output_tokens: u32,
}

fn sample_cells() -> Vec<Cell> {
    let text = std::fs::read_to_string(root().join("scenarios/matrix/routerbench-sample.csv")).expect("sample");
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Cell {
                prompt: f[0].to_string(),
                class: f[1].to_string(),
                model: f[2].to_string(),
                score: f[3].parse().expect("score"),
                cost: f[4].parse().expect("cost"),
                output_tokens: f[6].parse().expect("tokens"),
            }
        })
        .collect()
}

#[test]
fn a_matrix_replay_with_unlimited_capacity_has_exactly_the_quality_and_cost_of_the_file() {
    let dir = scratch("matrix-exact");
    let scenario = dir.join("unlimited.toml");
    std::fs::write(&scenario, UNLIMITED).expect("write");
    let mut model = {
        let mut s = Scenario::load(&scenario).expect("loads");
        Overrides::default().apply(&mut s);
        s.compile(&scenario).expect("compiles")
    };
    model.warmup_until = 0;
    model.warmup_requests = 0;
    let matrix = root().join("scenarios/matrix/routerbench-sample.csv");
    let settings = sim::matrix_replay::MatrixSettings { scale: 1.0, loops: 1, strict: true };
    let attached = sim::matrix_replay::attach_matrix(&mut model, &matrix, &settings, &dir).expect("attaches");
    assert_eq!((attached.prompts, attached.read, attached.errors.total()), (50, 150, 0));
    let selected: Vec<usize> = (0..model.router_configs.len()).collect();
    let exp = sim::experiment::run(&model, &selected, &sim::experiment::ExperimentOptions::default()).expect("runs");
    let report = sim::experiment::report(&model, &exp);

    // By hand, from the file: the model each policy sends each prompt to.
    let cells = sample_cells();
    let hard = |class: &str| class == "gsm8k" || class == "mbpp";
    // The oracle: the cheapest model (mixtral, then gpt-3.5, then gpt-4) whose real answer was acceptable,
    // else the cheapest.
    let by_price = ["mistralai/mixtral-8x7b-chat", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"];
    let oracle = |c: &Cell| -> &'static str {
        let ok = |m: &str| cells.iter().any(|x| x.prompt == c.prompt && x.model == m && x.score >= 0.5);
        by_price.into_iter().find(|m| ok(m)).unwrap_or(by_price[0])
    };
    let choices: [(&str, &Chooser<'_>); 4] = [
        ("oracle", &oracle),
        ("always-gpt-4", &|_| "gpt-4-1106-preview"),
        // mixtral is the cheapest on input and output alike, so the cheapest for every prompt.
        ("cost", &|_| "mistralai/mixtral-8x7b-chat"),
        ("by-task", &|c| if hard(&c.class) { "gpt-4-1106-preview" } else { "mistralai/mixtral-8x7b-chat" }),
    ];
    for (policy, choose) in choices {
        let chosen: Vec<&Cell> = cells.iter().filter(|c| c.model == choose(c)).collect();
        assert_eq!(chosen.len(), 50, "{policy}: one chosen cell per prompt");
        let acceptable = chosen.iter().filter(|c| c.score >= 0.5).count();
        let quality = acceptable as f64 / 50.0;
        let mean_score = chosen.iter().map(|c| c.score).sum::<f64>() / 50.0;
        let cost: f64 = chosen.iter().map(|c| c.cost).sum();
        let row = report.rows.iter().find(|r| r.policy == policy).expect("policy row");
        assert!(row.quality_on, "{policy}");
        assert_eq!(row.requests.mean, 50.0, "{policy}");
        assert_eq!(row.success_rate.mean, 1.0, "{policy}");
        // Every replication gives the same figures: the mean is exact, the interval zero.
        assert_eq!(row.quality.mean, quality, "{policy}");
        assert!((row.mean_score.mean - mean_score).abs() < 1e-12, "{policy}: {} vs {mean_score}", row.mean_score.mean);
        assert!((row.cost_usd.mean - cost).abs() < 1e-12 * cost, "{policy}: {} vs {cost}", row.cost_usd.mean);
        let per = cost / acceptable as f64;
        assert!((row.cost_per_acceptable.mean - per).abs() < 1e-12 * per, "{policy}");
        assert!(row.quality.ci95.unwrap_or(0.0) == 0.0, "{policy}: {:?}", row.quality.ci95);
    }
    // The mt-bench scores are fractional: the mean score differs from the acceptance rate.
    let gpt4 = report.rows.iter().find(|r| r.policy == "always-gpt-4").expect("row");
    assert!(gpt4.mean_score.mean < gpt4.quality.mean);
    drop(attached);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_matrix_replay_answers_with_the_real_output_length_of_the_chosen_model() {
    // gpt-4's real answers to the mbpp prompts are long, mixtral's shorter: with constant service times per
    // token and no queue, the per-request records' output tokens are the chosen model's, prompt by prompt.
    let dir = scratch("matrix-tokens");
    let scenario = dir.join("unlimited.toml");
    std::fs::write(&scenario, UNLIMITED).expect("write");
    let mut model = {
        let s = Scenario::load(&scenario).expect("loads");
        s.compile(&scenario).expect("compiles")
    };
    let matrix = root().join("scenarios/matrix/routerbench-sample.csv");
    let settings = sim::matrix_replay::MatrixSettings { scale: 1.0, loops: 1, strict: true };
    let attached = sim::matrix_replay::attach_matrix(&mut model, &matrix, &settings, &dir).expect("attaches");
    let cells = sample_cells();
    let prompts: Vec<&str> = {
        let mut v: Vec<&str> = Vec::new();
        for c in &cells {
            if !v.contains(&c.prompt.as_str()) {
                v.push(&c.prompt);
            }
        }
        v
    };
    let policy = model.policy_names().iter().position(|n| n == "always-gpt-4").expect("policy");
    let mut records = Vec::new();
    let mut sink = |r: &sim::engine::RequestRecord| records.push((r.id, r.output_tokens, r.cost_usd));
    let opts = sim::engine::RunOptions { records: Some(&mut sink), ..Default::default() };
    let _ = sim::engine::run(&model, policy, 0, opts);
    assert_eq!(records.len(), 50);
    for (id, tokens, cost) in records {
        let cell =
            cells.iter().find(|c| c.prompt == prompts[id as usize] && c.model == "gpt-4-1106-preview").expect("cell");
        assert_eq!((tokens, cost), (cell.output_tokens, cell.cost), "prompt {}", cell.prompt);
    }
    drop(attached);
    let _ = std::fs::remove_dir_all(&dir);
}
