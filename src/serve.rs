//! `tandem serve`: open the data directory, load or create the signing key, listen, and stop
//! cleanly on SIGTERM or SIGINT.

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

/// Retires the current signing key (kept as an old verify key) and writes a new one.
pub fn rotate_key(config: &Config) -> Result<String, String> {
    let hs = open(config)?;
    let path = config.data_dir.join("signing.key");
    let old = hs.signing_key();
    hs.retire_signing_key(old).map_err(|e| e.to_string())?;
    let new = tandem_core::server_key::ServerKey::generate_unique(&old.version);
    let tmp = config.data_dir.join("signing.key.new");
    new.write_new(&tmp).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    // The rename is durable only once the directory is synced: a crash right after must not
    // bring back the retired key.
    std::fs::File::open(&config.data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    Ok(new.key_id())
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
        media_quota_per_user: config.media_quota_per_user,
        trusted_proxies: config.trusted_proxies.clone(),
        well_known_client: config.well_known_client.clone(),
        turn: tandem_client_api::TurnConfig {
            uris: config.turn.uris.clone(),
            shared_secret: config.turn.shared_secret.clone(),
            username: config.turn.username.clone(),
            password: config.turn.password.clone(),
            user_lifetime: std::time::Duration::from_secs(config.turn.user_lifetime_secs),
        },
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

pub fn federation_config(config: &Config) -> tandem_federation::FederationConfig {
    let f = &config.federation;
    tandem_federation::FederationConfig {
        verify_tls: f.verify_tls,
        policy: tandem_federation::ServerPolicy { allow: f.allow.clone(), deny: f.deny.clone() },
        ip_range_blocklist: f.ip_range_blocklist.clone(),
        well_known_server: f.well_known_server.clone(),
        trusted_key_servers: f.trusted_key_servers.clone(),
        request_timeout: std::time::Duration::from_secs(f.request_timeout_secs),
    }
}

async fn serve(config: Config, exit_on_stdin_eof: bool) -> Result<(), String> {
    let hs = open(&config)?;
    let mut app = tandem_client_api::router(hs.clone(), api_config(&config));
    let mut federation_app = None;
    tandem_federation::push::start(hs.clone(), &federation_config(&config)).map_err(|e| e.to_string())?;
    if config.url_previews {
        tandem_federation::web::install(&hs, &federation_config(&config)).map_err(|e| e.to_string())?;
    }
    if config.federation.enabled {
        let fed =
            tandem_federation::Federation::start(hs.clone(), federation_config(&config)).map_err(|e| e.to_string())?;
        let routes = tandem_federation::server::router(fed);
        app = app.merge(routes.clone());
        federation_app = Some(routes);
    }
    let app = app.layer(axum::extract::DefaultBodyLimit::max(config.max_request_size as usize));
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.map_err(|e| format!("listen {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stopped_tx, stopped) = tokio::sync::watch::channel(false);
    let wait_stop = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tls_task = None;
    if let (Some(routes), Some(fed_addr), Some(cert), Some(key)) = (
        federation_app,
        config.federation.listen,
        config.federation.tls_cert.as_ref(),
        config.federation.tls_key.as_ref(),
    ) {
        let acceptor = crate::listener::acceptor(cert, key)?;
        let fed_listener =
            tokio::net::TcpListener::bind(fed_addr).await.map_err(|e| format!("federation listen {fed_addr}: {e}"))?;
        let bound = fed_listener.local_addr().map_err(|e| e.to_string())?;
        let routes = routes.layer(axum::extract::DefaultBodyLimit::max(config.max_request_size as usize));
        let limits = listener_limits(&config);
        tls_task =
            Some(tokio::spawn(crate::listener::serve(fed_listener, Some(acceptor), routes, limits, wait_stop())));
        info!("federation listening on https://{bound}");
    }
    // Handlers are installed before announcing the address: a supervisor (or a test) that sends
    // SIGTERM right after "listening" must get a clean stop, not the default kill.
    let stop = shutdown_signal(exit_on_stdin_eof).map_err(|e| format!("signal handlers: {e}"))?;
    info!(server_name = %config.server_name, key_id = %hs.signing_key().key_id(), "listening on http://{addr}");
    crate::listener::serve(listener, None, app, listener_limits(&config), async move {
        stop.await;
        let _ = stopped_tx.send(true);
    })
    .await;
    if let Some(task) = tls_task {
        let _ = task.await;
    }
    info!("stopped");
    Ok(())
}

fn listener_limits(config: &Config) -> crate::listener::Limits {
    crate::listener::Limits {
        max_connections: config.limits.max_connections,
        header_timeout: std::time::Duration::from_secs(config.limits.header_timeout_secs),
        body_timeout: std::time::Duration::from_secs(config.limits.body_timeout_secs),
    }
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
