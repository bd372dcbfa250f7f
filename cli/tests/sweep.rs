//! `routesim sweep`, `routesim merge` and `routesim tune --shard` end to end on the built binary: shard
//! outputs merge into the very bytes of a single-process run (1, 3 and 4 shards, run as the Kubernetes Job
//! and the Slurm array run them), re-runs skip finished cells and never take a broken file, and the
//! deployment manifests have what the schedulers need.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const RESULT_FILES: [&str; 5] =
    ["replications.parquet", "summary.csv", "summary.parquet", "paired.csv", "paired.parquet"];

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_routesim")
}

fn routesim(args: &[&str]) -> Output {
    Command::new(bin()).args(args).current_dir(common::root()).output().expect("routesim runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("sweep", name)
}

/// A small sweep over a scenario field and a policy field: 2 x 2 points x 3 policies, 2 replications of
/// 6000 requests (the first 4800, two minutes, are warm-up).
fn small_sweep(dir: &Path) -> PathBuf {
    let scenario = common::root().join("scenarios/hybrid-tuning.toml");
    let text = format!(
        "name = \"small\"\nscenarios = [\"{}\"]\npolicies = [\"round-robin\", \"cost\", \"hybrid\"]\n\
         baseline = \"round-robin\"\nreplications = 2\nrequests = 6000\n\n\
         [[params]]\npath = \"traffic.rate\"\nvalues = [30.0, 45.0]\n\n\
         [[params]]\npath = \"policies.hybrid.buffer\"\nmin = 0.0\nmax = 0.2\nsteps = 2\n",
        scenario.display()
    );
    let path = dir.join("small.toml");
    std::fs::write(&path, text).expect("write sweep");
    path
}

fn assert_same_results(a: &Path, b: &Path) {
    for name in RESULT_FILES {
        let x = std::fs::read(a.join(name)).unwrap_or_else(|_| panic!("{} has no {name}", a.display()));
        let y = std::fs::read(b.join(name)).unwrap_or_else(|_| panic!("{} has no {name}", b.display()));
        assert!(!x.is_empty(), "{name} is empty");
        assert!(x == y, "{name} differs between {} and {}", a.display(), b.display());
    }
}

fn yaml_docs() -> Vec<serde_norway::Value> {
    let text = std::fs::read_to_string(common::root().join("deploy/kubernetes/sweep-job.yaml")).expect("manifest");
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML document"))
        .collect()
}

fn job<'a>(docs: &'a [serde_norway::Value], name: &str) -> &'a serde_norway::Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some("Job") && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no Job {name}"))
}

/// The container's environment as a map.
fn env_of(container: &serde_norway::Value) -> BTreeMap<String, String> {
    container["env"]
        .as_sequence()
        .expect("env list")
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].as_str().unwrap().to_string()))
        .collect()
}

/// Runs a container's `command` + `args` as its pod would, with `env` (paths replaced for this machine)
/// and the built binary first on the PATH.
fn run_container(container: &serde_norway::Value, env: &BTreeMap<String, String>) -> std::process::Child {
    let mut argv: Vec<String> = container["command"]
        .as_sequence()
        .expect("command")
        .iter()
        .chain(container["args"].as_sequence().expect("args"))
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let program = argv.remove(0);
    let bin_dir = Path::new(bin()).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    Command::new(program)
        .args(argv)
        .envs(env)
        .env("PATH", path)
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("container command starts")
}

#[test]
fn shards_merge_into_the_bytes_of_one_process() {
    let dir = scratch("identical");
    let sweep = small_sweep(&dir);
    let sweep = sweep.to_str().unwrap();
    let single = dir.join("single");
    let out = ok(&routesim(&["sweep", sweep, "--out", single.to_str().unwrap(), "--threads", "2"]));
    assert!(out.contains("8 cells (8 run now, 0 already done)"), "{out}");
    assert!(out.contains("round-robin"), "{out}");

    // 1 shard, then merged in place.
    let one = dir.join("one");
    ok(&routesim(&["sweep", sweep, "--out", one.to_str().unwrap(), "--shard", "0/1"]));
    ok(&routesim(&["merge", one.to_str().unwrap(), "--out", one.to_str().unwrap()]));
    assert_same_results(&single, &one);

    // 3 shards as the Kubernetes Indexed Job runs them: one process per index, JOB_COMPLETION_INDEX set, all
    // writing to the shared volume; then the merge Job's command.
    let docs = yaml_docs();
    let shards = job(&docs, "routesim-sweep");
    let container = &shards["spec"]["template"]["spec"]["containers"][0];
    let shared = dir.join("volume");
    let mut env = env_of(container);
    env.insert("SWEEP".into(), sweep.into());
    env.insert("OUT".into(), shared.display().to_string());
    env.insert("SHARDS".into(), "3".into());
    env.insert("THREADS".into(), "1".into());
    let pods: Vec<_> = (0..3)
        .map(|i| {
            let mut e = env.clone();
            e.insert("JOB_COMPLETION_INDEX".into(), i.to_string());
            run_container(container, &e)
        })
        .collect();
    for pod in pods {
        ok(&pod.wait_with_output().expect("shard pod"));
    }
    assert!(!shared.join("summary.csv").exists(), "a shard alone does not merge");
    let merger = &job(&docs, "routesim-sweep-merge")["spec"]["template"]["spec"]["containers"][0];
    let mut menv = env_of(merger);
    menv.insert("OUT".into(), shared.display().to_string());
    menv.insert("WAIT_SECONDS".into(), "5".into());
    ok(&run_container(merger, &menv).wait_with_output().expect("merge pod"));
    assert_same_results(&single, &shared);

    // 4 shards as the Slurm array runs them, each into its own directory, merged from all four.
    let mut dirs = Vec::new();
    let procs: Vec<_> = (0..4)
        .map(|i| {
            let out = dir.join(format!("slurm-{i}"));
            dirs.push(out.display().to_string());
            Command::new("bash")
                .arg(common::root().join("deploy/slurm/sweep.sbatch"))
                .env("SLURM_ARRAY_TASK_ID", i.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", "4")
                .env("SLURM_CPUS_PER_TASK", "1")
                .env("SWEEP", sweep)
                .env("OUT", &out)
                .env("ROUTESIM", bin())
                .current_dir(common::root())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("array task starts")
        })
        .collect();
    for p in procs {
        ok(&p.wait_with_output().expect("array task"));
    }
    let merged = dir.join("merged-4");
    let mut args = vec!["merge"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap()]);
    ok(&routesim(&args));
    assert_same_results(&single, &merged);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reruns_skip_finished_cells_and_recompute_broken_ones() {
    let dir = scratch("resume");
    let sweep = small_sweep(&dir);
    let sweep = sweep.to_str().unwrap();
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let first = ok(&routesim(&["sweep", sweep, "--out", o, "--shard", "0/2"]));
    assert!(first.contains("4 cells (4 run now, 0 already done)"), "{first}");

    // Merging half a sweep fails and names what is missing.
    let half = routesim(&["merge", o, "--out", o]);
    assert_eq!(half.status.code(), Some(1));
    let err = String::from_utf8_lossy(&half.stderr);
    assert!(err.contains("4 of 12 cells have no complete result"), "{err}");

    // A re-run of the same shard does nothing.
    let again = ok(&routesim(&["sweep", sweep, "--out", o, "--shard", "0/2"]));
    assert!(again.contains("(0 run now, 4 already done)"), "{again}");

    // A file cut short at a cell's final name (not possible through the atomic rename, but a disk can lose
    // data) and a leftover temporary file: the first is recomputed, the second ignored.
    let mut cells: Vec<PathBuf> = std::fs::read_dir(out.join("cells")).unwrap().map(|e| e.unwrap().path()).collect();
    cells.sort();
    let victim = &cells[0];
    let good = std::fs::read(victim).unwrap();
    std::fs::write(victim, &good[..good.len() / 2]).unwrap();
    std::fs::write(out.join("cells").join(".leftover.parquet.tmp-1"), b"partial").unwrap();
    let repaired = ok(&routesim(&["sweep", sweep, "--out", o, "--shard", "0/2"]));
    assert!(repaired.contains("(1 run now, 3 already done)"), "{repaired}");
    assert_eq!(std::fs::read(victim).unwrap(), good, "the recomputed cell has the same bytes");

    ok(&routesim(&["sweep", sweep, "--out", o, "--shard", "1/2"]));
    ok(&routesim(&["merge", o, "--out", o]));
    let single = dir.join("single");
    ok(&routesim(&["sweep", sweep, "--out", single.to_str().unwrap()]));
    assert_same_results(&single, &out);

    // Another sweep into the same directory is refused rather than mixed in.
    let other = std::fs::read_to_string(sweep).unwrap().replace("requests = 6000", "requests = 6100");
    let other_path = dir.join("other.toml");
    std::fs::write(&other_path, other).unwrap();
    let mixed = routesim(&["sweep", other_path.to_str().unwrap(), "--out", o, "--shard", "0/2"]);
    assert_eq!(mixed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("different study"), "{mixed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merged_results_have_one_row_per_cell_and_replication_and_paired_differences() {
    use polars::prelude::{ParquetReader, SerReader};
    let dir = scratch("content");
    let sweep = small_sweep(&dir);
    let out = dir.join("out");
    ok(&routesim(&["sweep", sweep.to_str().unwrap(), "--out", out.to_str().unwrap()]));
    let reps = ParquetReader::new(std::fs::File::open(out.join("replications.parquet")).unwrap()).finish().unwrap();
    assert_eq!(reps.height(), 12 * 2, "12 cells x 2 replications");
    for col in ["cell", "scenario", "point", "traffic.rate", "policies.hybrid.buffer", "policy", "replication"] {
        assert!(reps.column(col).is_ok(), "replications.parquet has {col}");
    }
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 13);
    assert!(lines[0].starts_with("cell,scenario,point,traffic.rate,policies.hybrid.buffer,policy,replications,"));
    // The baseline does not depend on the hybrid's buffer: its two cells at rate 30 share one run.
    let rr: Vec<&str> = lines.iter().filter(|l| l.contains(",30.0,") && l.contains(",round-robin,")).copied().collect();
    assert_eq!(rr.len(), 2);
    let tail = |l: &str| l.split_once(",round-robin,").unwrap().1.to_string();
    assert_eq!(tail(rr[0]), tail(rr[1]));
    // The hybrid's cells do depend on it.
    let hy: Vec<String> = lines
        .iter()
        .filter(|l| l.contains(",30.0,") && l.contains(",hybrid,"))
        .map(|l| tail(&l.replace("hybrid", "round-robin")))
        .collect();
    assert_eq!(hy.len(), 2);
    assert_ne!(hy[0], hy[1]);
    let paired = std::fs::read_to_string(out.join("paired.csv")).unwrap();
    // 8 non-baseline cells x every metric; the baseline is never paired with itself.
    // The scenario states no quality: every metric but the quality ones.
    assert_eq!(paired.lines().count(), 1 + 8 * sim::report::metrics(false).count(), "{paired}");
    assert!(paired.lines().skip(1).all(|l| l.contains(",round-robin,") && !l.contains(",round-robin,round-robin,")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plan_counts_cells_requests_and_core_hours() {
    let dir = scratch("plan");
    let sweep = small_sweep(&dir);
    let out = ok(&routesim(&["sweep", sweep.to_str().unwrap(), "--plan", "--shard", "0/3"]));
    assert!(out.contains("2 parameter points") || out.contains("4 parameter points"), "{out}");
    assert!(out.contains("= 12 cells, 8 to run"), "{out}");
    assert!(out.contains("16 runs"), "{out}");
    assert!(out.contains("Simulated requests: 96,000"), "{out}");
    assert!(out.contains("Estimated CPU:") && out.contains("core-hours"), "{out}");
    assert!(out.contains("  3 shards:"), "the asked shard count is listed: {out}");
    assert!(!dir.join("out").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_sweeps_name_the_file_and_the_field() {
    let dir = scratch("errors");
    let sweep = small_sweep(&dir);
    let text = std::fs::read_to_string(&sweep).unwrap();
    let cases = [
        (text.replace("policies.hybrid.buffer", "policies.hybird.buffer"), "params[1].path", "hybird"),
        (text.replace("traffic.rate\"", "traffic.rat\""), "params[0].path", "rat"),
        (text.replace("values = [30.0, 45.0]", "values = [true]"), "params[0].values[0]", "number"),
        (text.replace("baseline = \"round-robin\"", "baseline = \"latency\""), "baseline", "latency"),
        (text.replace("\"cost\",", "\"cots\","), "policies", "cost"),
    ];
    for (i, (body, field, word)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad-{i}.toml"));
        std::fs::write(&path, body).unwrap();
        let out = routesim(&["sweep", path.to_str().unwrap(), "--plan"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(&path.display().to_string()), "case {i} names the file: {err}");
        assert!(err.contains(&format!("field `{field}`")), "case {i} names `{field}`: {err}");
        assert!(err.contains(word), "case {i} says `{word}`: {err}");
    }
    let no_out = routesim(&["sweep", sweep.to_str().unwrap(), "--shard", "0/2"]);
    assert_eq!(no_out.status.code(), Some(2));
    let bad_shard = routesim(&["sweep", sweep.to_str().unwrap(), "--shard", "2/2"]);
    assert_eq!(bad_shard.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_shard.stderr).contains("0 <= I < N"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tune_shards_merge_into_the_files_of_one_tune() {
    let dir = scratch("tune");
    let scenario = "scenarios/hybrid-tuning.toml";
    let common =
        ["--method", "lhs", "--candidates", "6", "--replications", "2", "--requests", "6000", "--threads", "1"];
    let single = dir.join("single");
    let mut args = vec!["tune", scenario, "--out", single.to_str().unwrap()];
    args.extend(common);
    let _ = routesim(&args); // exit 1 when nothing meets the constraints; the files are written either way
    assert!(single.join("candidates.csv").exists());
    let mut dirs = Vec::new();
    for i in 0..3 {
        let d = dir.join(format!("shard-{i}"));
        let shard = format!("{i}/3");
        let mut args = vec!["tune", scenario, "--out", d.to_str().unwrap(), "--shard", shard.as_str()];
        args.extend(common);
        ok(&routesim(&args));
        dirs.push(d.display().to_string());
    }
    let merged = dir.join("merged");
    let mut args = vec!["merge"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap()]);
    let _ = routesim(&args);
    let mut names: Vec<String> =
        std::fs::read_dir(&single).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(names.contains(&"candidates.parquet".to_string()) && names.contains(&"scenario.toml".to_string()));
    for name in &names {
        let mut a = std::fs::read(single.join(name)).unwrap();
        let mut b = std::fs::read(merged.join(name)).unwrap_or_else(|_| panic!("merge wrote no {name}"));
        if name == "report.html" {
            // The page names the directory it describes; everything else in it must match.
            let strip =
                |bytes: Vec<u8>, d: &Path| String::from_utf8(bytes).unwrap().replace(&d.display().to_string(), "DIR");
            (a, b) = (strip(a, &single).into_bytes(), strip(b, &merged).into_bytes());
        }
        assert!(a == b, "{name} differs");
    }

    // Successive halving needs every candidate's results after each rung: one machine only.
    let sh = routesim(&[
        "tune",
        scenario,
        "--method",
        "successive-halving",
        "--shard",
        "0/2",
        "--out",
        dir.join("sh").to_str().unwrap(),
    ]);
    assert_eq!(sh.status.code(), Some(2));
    let err = String::from_utf8_lossy(&sh.stderr);
    assert!(err.contains("successive halving") && err.contains("one machine"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kubernetes_job_has_what_an_indexed_sweep_needs() {
    let docs = yaml_docs();
    let shards = job(&docs, "routesim-sweep");
    assert_eq!(shards["apiVersion"].as_str(), Some("batch/v1"));
    let spec = &shards["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let completions = spec["completions"].as_u64().expect("completions");
    assert!(spec["parallelism"].as_u64().unwrap() <= completions);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"), "a Job's pods must not restart in place");
    let c = &pod["containers"][0];
    let env = env_of(c);
    assert_eq!(env["SHARDS"].parse::<u64>().unwrap(), completions, "SHARDS must equal completions");
    let script = c["args"][0].as_str().unwrap();
    assert!(
        script.contains("routesim sweep") && script.contains("--shard \"$JOB_COMPLETION_INDEX/$SHARDS\""),
        "{script}"
    );
    assert!(script.contains("--threads \"$THREADS\""));
    let sweep_file = env["SWEEP"].strip_prefix("/opt/routesim/").expect("the image keeps scenarios in /opt/routesim");
    assert!(common::root().join(sweep_file).exists(), "{sweep_file} exists in the repository");
    let cpu = c["resources"]["requests"]["cpu"].as_str().unwrap();
    assert_eq!(cpu, env["THREADS"], "as many threads as requested cores");
    assert!(c["resources"]["limits"]["memory"].as_str().is_some());
    let mount = &c["volumeMounts"][0];
    assert!(env["OUT"].starts_with(mount["mountPath"].as_str().unwrap()), "results go to the shared volume");
    let claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"].as_str().unwrap();
    let pvc = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("PersistentVolumeClaim") && d["metadata"]["name"].as_str() == Some(claim))
        .expect("the claim is defined");
    assert_eq!(pvc["spec"]["accessModes"][0].as_str(), Some("ReadWriteMany"), "shards on several nodes share it");

    let merge = job(&docs, "routesim-sweep-merge");
    let m = &merge["spec"]["template"]["spec"]["containers"][0];
    assert!(m["args"][0].as_str().unwrap().contains("routesim merge \"$OUT\" --out \"$OUT\" --wait"));
    assert_eq!(env_of(m)["OUT"], env["OUT"], "the merge reads where the shards write");
    assert_eq!(
        merge["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"].as_str(),
        Some(claim)
    );
}

#[test]
fn slurm_scripts_and_dockerfile_are_complete() {
    let root = common::root();
    let sbatch = std::fs::read_to_string(root.join("deploy/slurm/sweep.sbatch")).unwrap();
    let directives: BTreeMap<String, String> = sbatch
        .lines()
        .filter_map(|l| l.strip_prefix("#SBATCH --"))
        .filter_map(|d| d.split_once('=').map(|(k, v)| (k.to_string(), v.trim().to_string())))
        .collect();
    for key in ["array", "cpus-per-task", "mem", "time", "job-name", "output"] {
        assert!(directives.contains_key(key), "#SBATCH --{key} missing");
    }
    assert!(directives["array"].starts_with("0-"), "shards count from 0, as --shard does");
    assert!(sbatch.contains("--shard \"${SLURM_ARRAY_TASK_ID}/${SHARDS}\""));
    let submit = std::fs::read_to_string(root.join("deploy/slurm/submit.sh")).unwrap();
    assert!(submit.contains("--dependency=\"afterok:"), "the merge waits for every array task");
    let merge = std::fs::read_to_string(root.join("deploy/slurm/merge.sbatch")).unwrap();
    assert!(merge.contains("merge \"$OUT\" --out \"$OUT\""));
    for script in ["sweep.sbatch", "merge.sbatch", "submit.sh"] {
        let st = Command::new("bash").arg("-n").arg(root.join("deploy/slurm").join(script)).status().unwrap();
        assert!(st.success(), "{script} parses");
    }

    let docker = std::fs::read_to_string(root.join("deploy/Dockerfile")).unwrap();
    let froms: Vec<&str> = docker.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    assert!(froms[0].contains(" AS build"));
    assert!(docker.contains("cargo build --release --locked -p routesim --bin routesim"));
    assert!(docker.contains("COPY --from=build /src/target/release/routesim /usr/local/bin/routesim"));
    for line in docker.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(root.join(src).exists(), "COPY source {src} exists");
        }
    }
    // `cargo build` in the image needs every member of the workspace.
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    for member in manifest["workspace"]["members"].as_array().unwrap() {
        let member = member.as_str().unwrap();
        assert!(
            docker.contains(&format!("\nCOPY {member} {member}\n")),
            "the Dockerfile copies workspace member {member}"
        );
    }
}
