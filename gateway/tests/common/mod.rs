//! Shared helpers of the gateway's integration tests: mock upstreams and a gateway on 127.0.0.1:0.

#![allow(dead_code)]

use routesim_gateway::{GatewayConfig, RunningGateway};
use routesim_mock_upstream::MockUpstream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[[endpoints]]` entries `e0`, `e1`, ... pointing at the mocks (`None`: a closed port).
pub fn endpoints(urls: &[String]) -> String {
    let mut s = String::new();
    for (i, u) in urls.iter().enumerate() {
        s.push_str(&format!(
            "[[endpoints]]\nid = \"e{i}\"\nmodel = \"model-{i}\"\nprice = {{ input_per_mtok = 1.0, output_per_mtok = 2.0 }}\nupstream = {{ base_url = \"{u}\", api_key_env = \"GW_TEST_KEY\" }}\n\n"
        ));
    }
    s
}

/// A config text: `[server]` on 127.0.0.1:0, health checks off unless `rest` sets them, the endpoints and
/// `rest` (policies etc.).
pub fn config_text(urls: &[String], rest: &str) -> String {
    let health = if rest.contains("[health]") { "" } else { "[health]\ninterval = \"0s\"\n\n" };
    format!("[server]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"10s\"\n\n{health}{}{rest}", endpoints(urls))
}

/// The key every test upstream is configured with.
pub const KEY: &str = "sk-test-0123456789-SECRETKEY";

/// Parses a config (the key comes from a fake environment).
pub fn config(text: &str) -> GatewayConfig {
    GatewayConfig::parse(Path::new("test.toml"), text, None, &|k| (k == "GW_TEST_KEY").then(|| KEY.to_string()))
        .unwrap_or_else(|e| panic!("config: {e}\n{text}"))
}

/// Starts a gateway for `text`.
pub async fn gateway(text: &str) -> RunningGateway {
    routesim_gateway::start(config(text)).await.expect("gateway starts")
}

/// A URL nothing listens on (a port bound, then released).
pub fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("http://{a}/v1")
}

/// An HTTP client for the tests.
pub fn client() -> reqwest::Client {
    routesim_gateway::upstream::install_crypto_provider();
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().unwrap()
}

/// A chat body.
pub fn chat(content: &str, stream: bool) -> String {
    serde_json::json!({"model": "auto", "stream": stream, "messages": [{"role": "user", "content": content}]})
        .to_string()
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gw-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts mocks.
pub async fn mocks(replies: Vec<routesim_mock_upstream::MockReply>) -> Vec<MockUpstream> {
    let mut v = Vec::new();
    for r in replies {
        v.push(MockUpstream::start(r).await);
    }
    v
}

/// Their base URLs.
pub fn urls(m: &[MockUpstream]) -> Vec<String> {
    m.iter().map(|m| m.base_url()).collect()
}

/// The value of a metric line `name{labels} value` in a Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

/// Reads `/metrics`.
pub async fn metrics(c: &reqwest::Client, gw: &RunningGateway) -> String {
    c.get(format!("{}/metrics", gw.url())).send().await.unwrap().text().await.unwrap()
}

/// POSTs `body` to the gateway's chat completions route.
pub async fn post(c: &reqwest::Client, gw: &RunningGateway, body: String) -> reqwest::Response {
    c.post(format!("{}/v1/chat/completions", gw.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The endpoint that served a response (`x-routesim-endpoint`), empty when none.
pub fn served_by(r: &reqwest::Response) -> String {
    r.headers().get("x-routesim-endpoint").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}
