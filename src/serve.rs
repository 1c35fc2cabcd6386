//! `tandem serve`: open the data directory, load or create the signing key, listen, and stop
//! cleanly on SIGTERM or SIGINT.

use std::process::ExitCode;

use tandem_core::server_key::ServerKey;
use tandem_storage::Db;
use tracing::{error, info};

use crate::config::Config;

pub fn run(config: Config) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data).map_err(|e| format!("data_dir {}: {e}", data.display()))?;
    let key = ServerKey::load_or_generate(&data.join("signing.key")).map_err(|e| e.to_string())?;
    let _db = Db::open(&data.join("db"), &[]).map_err(|e| format!("database in {}: {e}", data.display()))?;
    let app = tandem_client_api::router(tandem_client_api::ApiConfig {
        server_name: config.server_name.clone(),
        public_base_url: config.public_base_url.clone(),
    })
    .layer(axum::extract::DefaultBodyLimit::max(config.max_request_size as usize));
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.map_err(|e| format!("listen {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // Handlers are installed before announcing the address: a supervisor (or a test) that sends
    // SIGTERM right after "listening" must get a clean stop, not the default kill.
    let stop = shutdown_signal().map_err(|e| format!("signal handlers: {e}"))?;
    info!(server_name = %config.server_name, key_id = %key.key_id(), "listening on http://{addr}");
    axum::serve(listener, app).with_graceful_shutdown(stop).await.map_err(|e| e.to_string())?;
    info!("stopped");
    Ok(())
}

fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => info!("SIGINT: stopping"),
            _ = term.recv() => info!("SIGTERM: stopping"),
        }
    })
}
