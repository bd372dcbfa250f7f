//! The `routesim-gateway` command line.

use crate::config::GatewayConfig;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// routesim's production gateway: serves OpenAI-compatible chat completions through a router-core policy.
#[derive(Debug, Parser)]
#[command(name = "routesim-gateway", version, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    /// Manage client keys instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The config file (TOML): [[endpoints]] with an `upstream` each, [[policies]], [[groups]], [server],
    /// [request_log], [auth], [[keys]]. A routesim scenario with upstreams is a valid config.
    #[arg(required = true)]
    pub config: Option<PathBuf>,
    /// The policy to serve (default: the first of [[policies]]).
    #[arg(long)]
    pub policy: Option<String>,
    /// Listen address, overriding [server] listen.
    #[arg(long)]
    pub listen: Option<String>,
    /// Validate the config, print what would be served and exit.
    #[arg(long)]
    pub check: bool,
    /// Serve without client keys on an address other hosts can reach (refused otherwise).
    #[arg(long)]
    pub allow_anonymous: bool,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create, list or revoke client keys in a key file.
    #[command(subcommand)]
    Keys(crate::auth::manage::KeysCommand),
}

/// Runs the command line; exit status 2 for an invalid config, 1 for a runtime failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Keys(k)) = &cli.command {
        return crate::auth::manage::run(k);
    }
    let Some(config) = cli.config.clone() else {
        eprintln!("error: a config file is required");
        return ExitCode::from(2);
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut cfg = match GatewayConfig::load(&config, cli.policy.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(l) = &cli.listen {
        match l.parse() {
            Ok(a) => cfg.listen = a,
            Err(_) => {
                eprintln!("error: --listen: expected an address like 127.0.0.1:8080, found {l:?}");
                return ExitCode::from(2);
            }
        }
    }
    cfg.allow_anonymous = cli.allow_anonymous;
    if let Err(e) = cfg.check_exposure() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let access = if cfg.requires_keys() { "client keys required" } else { "anonymous (no client keys)" };
    let summary = format!(
        "policy `{}` ({}) over {} endpoint(s): {}",
        cfg.router.policy.name,
        cfg.router.policy.kind.name(),
        cfg.router.endpoints.len(),
        cfg.router.endpoints.iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join(", ")
    );
    let summary = format!("{summary}; {access}{}", if cfg.server.tls.is_some() { "; TLS" } else { "" });
    if cli.check {
        println!("{}: ok: {summary}", config.display());
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = rt.block_on(async move {
        let gw = crate::server::start(cfg).await?;
        tracing::info!("listening on {}: {summary}", gw.url());
        if let Some(m) = gw.metrics_addr() {
            tracing::info!("serving /metrics on http://{m}/metrics");
        }
        let trigger = gw.trigger();
        tokio::spawn(async move {
            crate::shutdown::signal().await;
            tracing::info!("shutdown requested: draining in-flight requests");
            trigger.pull();
        });
        gw.wait().await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
