//! A new device of a user with cross-signing verifies itself against the existing one, as
//! Element X asks after a login: by comparing emoji (SAS) or by scanning a QR code. Both travel
//! entirely in to-device messages delivered through the encryption sync, and end with the
//! signature of the new device uploaded and each device trusting the other; after SAS the new
//! device also receives the cross-signing secrets from the old one.

use anyhow::{Context, Result, ensure};
use matrix_sdk::Client;
use matrix_sdk::encryption::identities::Device;
use matrix_sdk::encryption::verification::{QrVerificationData, Verification, VerificationRequest};
use matrix_sdk::encryption::{EncryptionSettings, VerificationState};
use matrix_sdk::ruma::OwnedDeviceId;
use matrix_sdk::ruma::events::key::verification::VerificationMethod;
use matrix_sdk_ui::sync_service::SyncService;

use crate::account::{login, user};
use crate::support::{soon, unique, until};

/// A user with cross-signing set up on a first device, and a second device logged in after,
/// which each side knows about.
struct Devices {
    old: Client,
    new: Client,
    syncs: [SyncService; 2],
}

impl Devices {
    async fn new(url: &str, prefix: &str) -> Result<Self> {
        let name = unique(prefix);
        let (old, old_sync) = user(url, &name).await?;
        old.encryption().bootstrap_cross_signing(None).await.context("cross-signing")?;
        let (new, new_sync) = login(url, &name, EncryptionSettings::default()).await?;
        let devices = Devices { old, new, syncs: [old_sync, new_sync] };
        let (old_id, new_id) = (devices.id(&devices.old)?, devices.id(&devices.new)?);
        until("the old device to learn of the new one", soon(), async || {
            devices.device(&devices.old, &new_id).await.is_some()
        })
        .await?;
        until("the new device to learn of the old one", soon(), async || {
            devices.device(&devices.new, &old_id).await.is_some()
        })
        .await?;
        Ok(devices)
    }

    fn id(&self, client: &Client) -> Result<OwnedDeviceId> {
        client.device_id().map(ToOwned::to_owned).context("device id")
    }

    /// `device_id` as `client` knows it.
    async fn device(&self, client: &Client, device_id: &OwnedDeviceId) -> Option<Device> {
        let user_id = client.user_id()?;
        client.encryption().get_device(user_id, device_id).await.ok().flatten()
    }

    /// Whether `client` trusts the device `device_id`.
    async fn trusts(&self, client: &Client, device_id: &OwnedDeviceId) -> bool {
        self.device(client, device_id).await.is_some_and(|d| d.is_verified())
    }

    /// The new device asks for verification with `methods`; the request reaches the old device
    /// as a to-device message, which accepts it with `accepted`. Returns both ends, ready.
    async fn request(
        &self,
        methods: Vec<VerificationMethod>,
        accepted: Vec<VerificationMethod>,
    ) -> Result<(VerificationRequest, VerificationRequest)> {
        let own = self.new.user_id().context("user id")?.to_owned();
        let identity = self.new.encryption().request_user_identity(&own).await?.context("own identity")?;
        let requested = identity.request_verification_with_methods(methods).await?;
        let flow = requested.flow_id().to_owned();
        let mut received = None;
        until("the verification request at the old device", soon(), async || {
            received = self.old.encryption().get_verification_request(&own, &flow).await;
            received.is_some()
        })
        .await?;
        let received = received.context("the request")?;
        received.accept_with_methods(accepted).await.context("accept the request")?;
        until("the new device to see the request accepted", soon(), async || requested.is_ready()).await?;
        Ok((requested, received))
    }

    /// The verification `flow` as `client` holds it now.
    async fn verification(&self, client: &Client, flow: &str) -> Option<Verification> {
        client.encryption().get_verification(client.user_id()?, flow).await
    }

    /// Both devices trust each other, and the new one counts as verified.
    async fn trusted(&self) -> Result<()> {
        let (old_id, new_id) = (self.id(&self.old)?, self.id(&self.new)?);
        until("the old device to trust the new one", soon(), async || self.trusts(&self.old, &new_id).await).await?;
        until("the new device to trust the old one", soon(), async || self.trusts(&self.new, &old_id).await).await?;
        until("the new device's own verification state", soon(), async || {
            self.new.encryption().verification_state().get() == VerificationState::Verified
        })
        .await
    }

    async fn stop(self) {
        for sync in self.syncs {
            sync.stop().await;
        }
    }
}

/// Emoji verification: the new device starts SAS, both show the same seven emoji and confirm.
pub async fn sas(url: &str) -> Result<()> {
    let devices = Devices::new(url, "sas").await?;
    let (requested, _received) =
        devices.request(vec![VerificationMethod::SasV1], vec![VerificationMethod::SasV1]).await?;
    let flow = requested.flow_id().to_owned();
    let new_sas = requested.start_sas().await?.context("SAS not started")?;

    let mut old_sas = None;
    until("the SAS start at the old device", soon(), async || {
        old_sas = devices.verification(&devices.old, &flow).await.and_then(Verification::sas);
        old_sas.is_some()
    })
    .await?;
    let old_sas = old_sas.context("the old device's SAS")?;
    old_sas.accept().await.context("accept SAS")?;
    until("both devices to have emoji to show", soon(), async || {
        old_sas.can_be_presented() && new_sas.can_be_presented()
    })
    .await?;
    let (old_emoji, new_emoji) = (old_sas.emoji().context("old emoji")?, new_sas.emoji().context("new emoji")?);
    ensure!(old_emoji == new_emoji, "the devices show different emoji: {old_emoji:?} / {new_emoji:?}");

    old_sas.confirm().await.context("confirm at the old device")?;
    new_sas.confirm().await.context("confirm at the new device")?;
    until("SAS to finish on both devices", soon(), async || old_sas.is_done() && new_sas.is_done()).await?;
    ensure!(!old_sas.is_cancelled() && !new_sas.is_cancelled(), "SAS was cancelled");
    devices.trusted().await?;

    // The old device answers the new one's request for the cross-signing secrets.
    until("the cross-signing keys to reach the new device", soon(), async || {
        devices.new.encryption().cross_signing_status().await.is_some_and(|s| s.is_complete())
    })
    .await?;
    devices.stop().await;
    Ok(())
}

/// QR verification: the old device, which trusts the cross-signing key, shows a code; the new
/// device scans it and says so; the old device confirms the scan.
pub async fn qr(url: &str) -> Result<()> {
    use VerificationMethod::{QrCodeScanV1, QrCodeShowV1, ReciprocateV1};
    let devices = Devices::new(url, "qr").await?;
    let (requested, received) =
        devices.request(vec![QrCodeScanV1, ReciprocateV1], vec![QrCodeShowV1, ReciprocateV1]).await?;
    let flow = requested.flow_id().to_owned();

    let shown = received.generate_qr_code().await?.context("the old device shows no QR code")?;
    let data = QrVerificationData::from_bytes(shown.to_bytes()?)?;
    let scanned = requested.scan_qr_code(data).await?.context("the new device cannot scan the code")?;

    until("the old device to learn its code was scanned", soon(), async || {
        devices.verification(&devices.old, &flow).await.and_then(Verification::qr).is_some_and(|q| q.has_been_scanned())
    })
    .await?;
    shown.confirm().await.context("confirm the scan")?;
    until("QR verification to finish on both devices", soon(), async || shown.is_done() && scanned.is_done()).await?;
    ensure!(!shown.is_cancelled() && !scanned.is_cancelled(), "QR verification was cancelled");
    devices.trusted().await?;
    devices.stop().await;
    Ok(())
}
