//! `tandem serve`: open the data directory, load or create the signing key, listen, and stop
//! cleanly on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::process::ExitCode;

use tandem_client_api::{ApiConfig, RateLimit, RegistrationMode};
use tandem_core::Homeserver;
use tracing::{error, info};

use crate::config::{Config, Registration};

pub fn run(config: Config, exit_on_stdin_eof: bool) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    // Engine calls run on the blocking pool; a few threads keep the disk busy on a small
    // machine, and each extra thread costs memory (its stack and its allocator arena).
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(8).build() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, exit_on_stdin_eof)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the engine on the configured data directory (creating it and the signing key on
/// first use).
pub fn open(config: &Config) -> Result<std::sync::Arc<Homeserver>, String> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data).map_err(|e| format!("data_dir {}: {e}", data.display()))?;
    let key =
        tandem_core::server_key::ServerKey::load_or_generate(&data.join("signing.key")).map_err(|e| e.to_string())?;
    Homeserver::open(data, &config.server_name, key).map_err(|e| {
        let text = e.to_string();
        if text.contains("LOCK") || text.contains("lock") {
            format!("the database in {} is in use: is tandem already running there? ({text})", data.display())
        } else {
            format!("database in {}: {text}", data.display())
        }
    })
}

pub fn api_config(config: &Config) -> ApiConfig {
    ApiConfig {
        server_name: config.server_name.clone(),
        public_base_url: config.public_base_url.clone(),
        registration: match config.registration {
            Registration::Disabled => RegistrationMode::Disabled,
            Registration::Token => RegistrationMode::Token,
            Registration::Open => RegistrationMode::Open,
        },
        registration_tokens: config.registration_tokens.clone(),
        registration_shared_secret: config.registration_shared_secret.clone(),
        rate_limit_message: RateLimit {
            per_second: config.rate_limit_message_per_second,
            burst: config.rate_limit_message_burst,
        },
        max_request_size: config.max_request_size,
        rate_limit_login: RateLimit {
            per_second: config.rate_limit_login_per_second,
            burst: config.rate_limit_login_burst,
        },
        rate_limit_registration: RateLimit {
            per_second: config.rate_limit_registration_per_second,
            burst: config.rate_limit_registration_burst,
        },
    }
}

async fn serve(config: Config, exit_on_stdin_eof: bool) -> Result<(), String> {
    let hs = open(&config)?;
    let app = tandem_client_api::router(hs.clone(), api_config(&config))
        .layer(axum::extract::DefaultBodyLimit::max(config.max_request_size as usize));
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.map_err(|e| format!("listen {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // Handlers are installed before announcing the address: a supervisor (or a test) that sends
    // SIGTERM right after "listening" must get a clean stop, not the default kill.
    let stop = shutdown_signal(exit_on_stdin_eof).map_err(|e| format!("signal handlers: {e}"))?;
    info!(server_name = %config.server_name, key_id = %hs.signing_key().key_id(), "listening on http://{addr}");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| e.to_string())?;
    info!("stopped");
    Ok(())
}

fn shutdown_signal(exit_on_stdin_eof: bool) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // A supervising test harness asks for this so the server stops when the harness exits,
    // even if the harness is killed before it can stop the server.
    let stdin_closed = tokio::sync::Notify::new();
    let stdin_closed = std::sync::Arc::new(stdin_closed);
    if exit_on_stdin_eof {
        let notify = stdin_closed.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            notify.notify_one();
        });
    }
    Ok(async move {
        tokio::select! {
            _ = int.recv() => info!("SIGINT: stopping"),
            _ = term.recv() => info!("SIGTERM: stopping"),
            _ = stdin_closed.notified() => info!("stdin closed: stopping"),
        }
    })
}
