//! Issue 28, where a request may go: the request's `model` names the policy, a group, an endpoint or a model
//! and routing stays inside it; a key's `models` limit the endpoints that may answer; an unknown model is a
//! 404; and the response cache never serves one tenant's answer to another, nor an answer from an endpoint
//! the request could not have been routed to.

mod common;

use common::*;
use routesim_gateway::auth::keys::{StoredHash, new_secret};
use routesim_mock_upstream::MockReply;

fn key(id: &str, extra: &str) -> (String, String) {
    let secret = new_secret(id);
    let entry = format!("[[keys]]\nid = \"{id}\"\nhash = \"{}\"\n{extra}\n", StoredHash::new(&secret).encode());
    (entry, secret)
}

async fn ask(
    c: &reqwest::Client,
    gw: &routesim_gateway::RunningGateway,
    secret: Option<&str>,
    model: &str,
    content: &str,
) -> (u16, String, Option<String>, serde_json::Value) {
    let body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": content}]});
    let mut r = c.post(format!("{}/v1/chat/completions", gw.url())).body(body.to_string());
    if let Some(s) = secret {
        r = r.bearer_auth(s);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let ep = r.headers().get("x-routesim-endpoint").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let cache = r.headers().get("x-routesim-cache").map(|v| v.to_str().unwrap().to_string());
    let v = serde_json::from_str(&r.text().await.unwrap()).unwrap_or(serde_json::Value::Null);
    (status, ep, cache, v)
}

/// Endpoints e0 (model `gpt-4o-mini`), e1 (`claude-sonnet-4`), e2 (`gpt-4o`), a group `claudes` of e1 alone
/// and a round-robin root.
fn models_config(urls: &[String], rest: &str) -> String {
    config_text(urls, &format!("[[policies]]\nname = \"rr\"\nkind = \"round-robin\"\n\n[[groups]]\nname = \"fast\"\nkind = \"round-robin\"\ntargets = [\"e0\", \"e1\"]\n\n{rest}"))
        .replace("model = \"model-0\"", "model = \"gpt-4o-mini\"")
        .replace("model = \"model-1\"", "model = \"claude-sonnet-4\"")
        .replace("model = \"model-2\"", "model = \"gpt-4o\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_names_where_a_request_may_go() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1), MockReply::ok(1)]).await;
    let gw = gateway(&models_config(&urls(&m), "")).await;
    let c = client();
    let cases: [(&str, &[&str]); 4] =
        [("gpt-4o-mini", &["e0"]), ("claude-sonnet-4", &["e1"]), ("e2", &["e2"]), ("fast", &["e0", "e1"])];
    for (model, allowed) in cases {
        for i in 0..6 {
            let (status, ep, _, _) = ask(&c, &gw, None, model, &format!("q{i}")).await;
            assert_eq!(status, 200, "{model}");
            assert!(allowed.contains(&ep.as_str()), "{model} served by {ep}");
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for model in ["auto", "rr", "routesim"] {
        for i in 0..3 {
            let (status, ep, _, _) = ask(&c, &gw, None, model, &format!("a{i}")).await;
            assert_eq!(status, 200, "{model}");
            seen.insert(ep);
        }
    }
    assert_eq!(seen.len(), 3, "the policy's own names reach every endpoint: {seen:?}");
    let before: u64 = m.iter().map(|m| m.requests()).sum();
    let (status, _, _, v) = ask(&c, &gw, None, "gpt-5-imaginary", "x").await;
    assert_eq!(status, 404);
    assert_eq!((v["error"]["code"].as_str(), v["error"]["param"].as_str()), (Some("model_not_found"), Some("model")));
    assert_eq!(m.iter().map(|m| m.requests()).sum::<u64>(), before, "nothing sent for an unknown model");
    // /v1/models lists exactly what may be asked for.
    let list: serde_json::Value =
        serde_json::from_str(&c.get(format!("{}/v1/models", gw.url())).send().await.unwrap().text().await.unwrap())
            .unwrap();
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    for want in ["auto", "rr", "fast", "e0", "e1", "e2", "gpt-4o-mini", "claude-sonnet-4", "gpt-4o"] {
        assert!(ids.contains(&want), "{want} not in {ids:?}");
    }
    for id in &ids {
        let (status, _, _, _) = ask(&c, &gw, None, id, "listed").await;
        assert_eq!(status, 200, "listed {id} is choosable");
    }
    gw.shutdown();
    gw.wait().await.unwrap();
}

/// A retry stays inside the model: e1 (`claude-sonnet-4`) fails with a 500 and the policy's fallback chain
/// points at e0, yet a request for `claude-sonnet-4` is not answered by e0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_fallbacks_stay_inside_the_model() {
    let m = mocks(vec![MockReply::ok(1), MockReply::status(500), MockReply::ok(1)]).await;
    let text = models_config(&urls(&m), "")
        .replace("kind = \"round-robin\"\n\n[[groups]]", "kind = \"round-robin\"\nfallbacks = [\"e0\"]\n\n[[groups]]");
    let gw = gateway(&text).await;
    let c = client();
    let (status, _, _, _) = ask(&c, &gw, None, "claude-sonnet-4", "x").await;
    assert_eq!(status, 502);
    assert_eq!(m[0].requests(), 0, "e0 serves another model");
    let (status, ep, _, _) = ask(&c, &gw, None, "fast", "y").await;
    assert_eq!((status, ep.as_str()), (200, "e0"), "inside the group, failover works");
    assert_eq!(m[2].requests(), 0, "e2 is not in the group");
    gw.shutdown();
    gw.wait().await.unwrap();
}

/// A key limited to `gpt-4o*` is only ever answered by e0 (`gpt-4o-mini`) or e2 (`gpt-4o`), whatever it
/// asks for; asking for `claude-sonnet-4` is a 403 with nothing sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_models_limit_the_endpoints_that_answer() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1), MockReply::ok(1)]).await;
    let (k, s) = key("narrow", "models = [\"gpt-4o*\"]");
    let gw = gateway(&models_config(&urls(&m), &k)).await;
    let c = client();
    for model in ["gpt-4o-mini", "auto", "fast", "gpt-4o"] {
        for i in 0..10 {
            let (status, ep, _, v) = ask(&c, &gw, Some(&s), model, &format!("{model}{i}")).await;
            assert_eq!(status, 200, "{model}: {v}");
            assert!(ep == "e0" || ep == "e2", "{model} answered by {ep}");
            if model != "auto" {
                assert_eq!(ep, if model == "gpt-4o" { "e2" } else { "e0" }, "{model}");
            }
        }
    }
    assert_eq!(m[1].requests(), 0, "claude never answers this key");
    for model in ["claude-sonnet-4", "e1"] {
        let (status, _, _, v) = ask(&c, &gw, Some(&s), model, "x").await;
        assert_eq!((status, v["error"]["code"].as_str()), (403, Some("model_not_allowed")), "{model}");
    }
    assert_eq!(m[1].requests(), 0);
    let list: serde_json::Value = serde_json::from_str(
        &c.get(format!("{}/v1/models", gw.url())).bearer_auth(&s).send().await.unwrap().text().await.unwrap(),
    )
    .unwrap();
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"gpt-4o-mini") && ids.contains(&"auto"), "{ids:?}");
    assert!(!ids.contains(&"claude-sonnet-4") && !ids.contains(&"e1"), "{ids:?}");
    gw.shutdown();
    gw.wait().await.unwrap();
}

/// Tenant A (tagged `us`) and tenant B (tagged `eu`) send the same body: B is not served A's answer from the
/// `us` endpoint; each tenant hits its own entry; a tenant field shares entries between keys of one team.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_cache_is_scoped_per_tenant_and_route() {
    let m = mocks(vec![MockReply::ok(1), MockReply::ok(1)]).await;
    let (ka, sa) = key("tenant-a", "endpoint_tags = [\"us\"]");
    let (kb, sb) = key("tenant-b", "endpoint_tags = [\"eu\"]");
    let (kc, sc) = key("tenant-c", "");
    let (kd, sd) = key("tenant-d", "");
    let policy = "[[policies]]\nname = \"p\"\nkind = \"round-robin\"\ncache = { ttl = \"10m\", capacity = 100 }\n\n";
    let text = config_text(&urls(&m), &format!("{policy}{ka}{kb}{kc}{kd}"))
        .replace("id = \"e0\"\n", "id = \"e0\"\ntags = [\"us\"]\n")
        .replace("id = \"e1\"\n", "id = \"e1\"\ntags = [\"eu\"]\n");
    let gw = gateway(&text).await;
    let c = client();
    let (st, ep, cache, _) = ask(&c, &gw, Some(&sa), "auto", "same question").await;
    assert_eq!((st, ep.as_str(), cache), (200, "e0", None));
    let (st, ep, cache, _) = ask(&c, &gw, Some(&sb), "auto", "same question").await;
    assert_eq!((st, ep.as_str(), cache), (200, "e1", None), "B is not served A's answer from the us endpoint");
    let (_, _, cache, _) = ask(&c, &gw, Some(&sa), "auto", "same question").await;
    assert_eq!(cache.as_deref(), Some("hit"), "A hits its own entry");
    let (_, _, cache, _) = ask(&c, &gw, Some(&sb), "auto", "same question").await;
    assert_eq!(cache.as_deref(), Some("hit"), "B hits its own entry");
    // Untagged keys: still one scope per key.
    let (_, _, cache, _) = ask(&c, &gw, Some(&sc), "auto", "another").await;
    assert_eq!(cache, None);
    let (_, _, cache, _) = ask(&c, &gw, Some(&sd), "auto", "another").await;
    assert_eq!(cache, None, "D is not served C's answer");
    assert_eq!(m[0].requests() + m[1].requests(), 4);
    gw.shutdown();
    gw.wait().await.unwrap();

    // `[response_cache] tenant_field`: keys of one team share.
    let m = mocks(vec![MockReply::ok(1)]).await;
    let (k1, s1) = key("search-1", "metadata = { team = \"search\" }");
    let (k2, s2) = key("search-2", "metadata = { team = \"search\" }");
    let (k3, s3) = key("ads-1", "metadata = { team = \"ads\" }");
    let (k4, s4) = key("loner", "");
    let rest = format!("[response_cache]\ntenant_field = \"team\"\n\n{policy}{k1}{k2}{k3}{k4}");
    let gw = gateway(&config_text(&urls(&m), &rest)).await;
    let (_, _, cache, _) = ask(&c, &gw, Some(&s1), "auto", "q").await;
    assert_eq!(cache, None);
    let (_, _, cache, _) = ask(&c, &gw, Some(&s2), "auto", "q").await;
    assert_eq!(cache.as_deref(), Some("hit"), "same team");
    let (_, _, cache, _) = ask(&c, &gw, Some(&s3), "auto", "q").await;
    assert_eq!(cache, None, "another team");
    // A key without the field cannot claim a team through the request's own metadata.
    let spoof = serde_json::json!({"model": "auto", "metadata": {"team": "search"},
        "messages": [{"role": "user", "content": "q"}]});
    let r = c.post(format!("{}/v1/chat/completions", gw.url())).bearer_auth(&s4).body(spoof.to_string()).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-routesim-cache").is_none(), "the client's own `team` is not a tenant");
    gw.shutdown();
    gw.wait().await.unwrap();
}
