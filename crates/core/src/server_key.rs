//! The server's ed25519 signing key, kept on disk in Synapse's `signing.key` format
//! (`ed25519 <version> <unpadded base64 seed>`), so keys can move between the two servers.

use std::path::Path;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use ruma::signatures::{Ed25519KeyPair, PublicKeyMap, PublicKeySet};

/// PKCS#8 v1 DER for an ed25519 private key (RFC 8410), up to the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading or writing the signing key: {0}")]
    Io(#[from] std::io::Error),
    #[error("the signing key file is not `ed25519 <version> <base64 seed>`: {0}")]
    Format(&'static str),
}

/// Unpadded or padded standard base64 that tolerates non-zero trailing bits, as other servers
/// (and the spec's own test seed) write keys.
pub const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One signing key of this server.
pub struct ServerKey {
    pub version: String,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl ServerKey {
    pub fn from_seed(seed: [u8; 32], version: &str) -> Self {
        let der: Vec<u8> = PKCS8_ED25519_PREFIX.iter().chain(&seed).copied().collect();
        let pair = Ed25519KeyPair::from_der(&der, version.to_owned()).expect("a well-formed PKCS#8 document");
        ServerKey { version: version.to_owned(), seed, pair }
    }

    /// A new random key.
    pub fn generate(version: &str) -> Self {
        let der = Ed25519KeyPair::generate();
        let seed: [u8; 32] = der[PKCS8_ED25519_PREFIX.len()..PKCS8_ED25519_PREFIX.len() + 32]
            .try_into()
            .expect("ruma generates PKCS#8 documents with the seed after the prefix");
        Self::from_seed(seed, version)
    }

    /// `ed25519:<version>`.
    pub fn key_id(&self) -> String {
        format!("ed25519:{}", self.version)
    }

    pub fn pair(&self) -> &Ed25519KeyPair {
        &self.pair
    }

    /// The public key, unpadded base64, as `/_matrix/key/v2/server` publishes it.
    pub fn public_key_base64(&self) -> String {
        STANDARD_NO_PAD.encode(self.pair.public_key())
    }

    /// The map `verify_event` and `verify_json` take, holding this key for `server_name`.
    pub fn public_key_map(&self, server_name: &str) -> PublicKeyMap {
        let mut set = PublicKeySet::new();
        set.insert(self.key_id(), ruma::serde::Base64::new(self.pair.public_key().to_vec()));
        let mut map = PublicKeyMap::new();
        map.insert(server_name.to_owned(), set);
        map
    }

    /// Signs canonical JSON in place, adding `signatures.<server_name>.<key id>`.
    pub fn sign_json(
        &self,
        server_name: &str,
        object: &mut ruma::CanonicalJsonObject,
    ) -> Result<(), ruma::signatures::JsonError> {
        ruma::signatures::sign_json(server_name, &self.pair, object)
    }

    /// A new random key whose version differs from `other_than`.
    pub fn generate_unique(other_than: &str) -> Self {
        loop {
            let version = random_version();
            if version != other_than {
                return Self::generate(&version);
            }
        }
    }

    /// Writes the key to a new file readable by the owner only.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        write_private(path, self.to_file_line().as_bytes()).map_err(KeyError::from)
    }

    pub fn to_file_line(&self) -> String {
        format!("ed25519 {} {}\n", self.version, STANDARD_NO_PAD.encode(self.seed))
    }

    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut parts = text.split_whitespace();
        let (Some("ed25519"), Some(version), Some(seed)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(KeyError::Format("expected three words starting with ed25519"));
        };
        let seed = LENIENT_BASE64.decode(seed).map_err(|_| KeyError::Format("the seed is not base64"))?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| KeyError::Format("the seed is not 32 bytes"))?;
        Ok(Self::from_seed(seed, version))
    }

    /// The key in `path`, or a new one written there (readable by the owner only) if there is
    /// no file yet.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate(&random_version());
                write_private(path, key.to_file_line().as_bytes())?;
                Ok(key)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A short key version, like Synapse's `a_XXXX`.
fn random_version() -> String {
    let der = Ed25519KeyPair::generate();
    let n = u32::from_le_bytes(der[16..20].try_into().expect("4 bytes"));
    format!("a_{}", STANDARD_NO_PAD.encode(n.to_le_bytes()).replace(['+', '/'], "_"))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
