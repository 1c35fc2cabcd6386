//! Accounts the way an app makes them: registration through user-interactive authentication
//! (ask, read the flows and the session from the 401, complete `m.login.dummy` in that
//! session), further devices through a password login, and the SDK's sync service on each.

use anyhow::{Context, Result, bail, ensure};
use matrix_sdk::Client;
use matrix_sdk::encryption::EncryptionSettings;
use matrix_sdk::ruma::api::client::account::register::v3::Request as RegisterRequest;
use matrix_sdk::ruma::api::client::uiaa::{AuthData, AuthType, Dummy};
use matrix_sdk_ui::sync_service::SyncService;

/// Every test account's password, derived from its localpart so further devices can log in.
pub(crate) fn password(localpart: &str) -> String {
    format!("pw-{localpart}")
}

async fn client(url: &str, settings: EncryptionSettings) -> Result<Client> {
    Ok(Client::builder().homeserver_url(url).with_encryption_settings(settings).build().await?)
}

/// Starts the sync service Element X runs: sliding sync for the room list and a second loop
/// for to-device messages and encryption.
async fn syncing(client: &Client) -> Result<SyncService> {
    let sync = SyncService::builder(client.clone()).build().await.context("sync service")?;
    sync.start().await;
    Ok(sync)
}

/// Registers `localpart` and logs `client` in as it, as apps do: a first request without
/// `auth` must be answered with the user-interactive auth flows and a session, and the retry
/// completes the dummy stage inside that session.
async fn register(client: &Client, localpart: &str) -> Result<()> {
    let mut request = RegisterRequest::new();
    request.username = Some(localpart.into());
    request.password = Some(password(localpart));
    let error = match client.matrix_auth().register(request.clone()).await {
        Ok(_) => bail!("registration without auth succeeded: no user-interactive auth offered"),
        Err(error) => error,
    };
    let info = error.as_uiaa_response().with_context(|| format!("registration refused without UIAA: {error}"))?;
    ensure!(
        info.flows.iter().any(|flow| flow.stages == [AuthType::Dummy]),
        "no flow of just m.login.dummy offered: {:?}",
        info.flows
    );
    let session = info.session.clone().context("the UIAA response has no session")?;

    let mut dummy = Dummy::new();
    dummy.session = Some(session);
    request.auth = Some(AuthData::Dummy(dummy));
    client.matrix_auth().register(request).await.context("register with m.login.dummy")?;
    ensure!(client.matrix_auth().logged_in(), "registration did not log the client in");
    Ok(())
}

/// A new user, registered through UIAA, syncing.
pub(crate) async fn user(url: &str, localpart: &str) -> Result<(Client, SyncService)> {
    let client = client(url, EncryptionSettings::default()).await?;
    register(&client, localpart).await?;
    let sync = syncing(&client).await?;
    Ok((client, sync))
}

/// A further device of a registered user, logged in with its password, syncing.
pub(crate) async fn login(url: &str, localpart: &str, settings: EncryptionSettings) -> Result<(Client, SyncService)> {
    let client = client(url, settings).await?;
    let response = client
        .matrix_auth()
        .login_username(localpart, &password(localpart))
        .initial_device_display_name("tandem-sdk-check")
        .send()
        .await
        .context("password login")?;
    ensure!(response.user_id.localpart() == localpart, "logged in as {} instead of {localpart}", response.user_id);
    let sync = syncing(&client).await?;
    Ok((client, sync))
}
