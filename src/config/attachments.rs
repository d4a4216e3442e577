//! `[attachments]`: where uploaded files are kept, and what may be uploaded.
//!
//! The files themselves go to an object store (a local directory by default, any
//! S3-compatible store by config); their description lives in Redis with the
//! conversation (`store/attachments.rs`).

use std::path::PathBuf;

use serde::Deserialize;

/// `[attachments]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentSettings {
    /// Where the files go.
    pub store: ObjectStoreSettings,
    /// Largest file accepted, in bytes (10 MB by default); larger → `too_large`.
    pub max_bytes: usize,
    /// Media types accepted. Each upload's bytes must match its declared type (the
    /// magic bytes are checked); plain-text types must be valid UTF-8.
    pub allowed_types: Vec<String>,
    /// How long a download link works, in seconds.
    pub link_ttl_s: u64,
    /// Files one conversation may hold; more → `too_large`.
    pub max_per_conversation: u32,
    /// Uploads read at the same time by this hub; more → `rate_limited` (each holds up
    /// to `max_bytes` in memory while its bytes are checked).
    pub max_concurrent_uploads: usize,
    /// An upload whose body has not arrived after this long is refused.
    pub upload_timeout_s: u64,
    /// How often this hub deletes files whose conversation's retention has ended.
    pub sweep_interval_s: u64,
}

impl Default for AttachmentSettings {
    fn default() -> Self {
        AttachmentSettings {
            store: ObjectStoreSettings::default(),
            max_bytes: 10 * 1024 * 1024,
            allowed_types: [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain",
            ]
            .map(String::from)
            .to_vec(),
            link_ttl_s: 300,
            max_per_conversation: 50,
            max_concurrent_uploads: 16,
            upload_timeout_s: 60,
            sweep_interval_s: 60,
        }
    }
}

/// `[attachments.store]`: `kind = "local"` (a directory; the default, for one machine)
/// or `kind = "s3"` (any S3-compatible store; several hubs share it).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ObjectStoreSettings {
    Local {
        /// Created on the first upload if missing.
        directory: PathBuf,
    },
    S3 {
        bucket: String,
        #[serde(default)]
        region: Option<String>,
        /// For stores other than AWS (MinIO, Ceph, R2…): their URL.
        #[serde(default)]
        endpoint: Option<String>,
        /// Credentials; when left out, the usual `AWS_*` environment variables apply.
        #[serde(default)]
        access_key_id: Option<String>,
        #[serde(default)]
        secret_access_key: Option<super::Secret>,
        /// Allow a plain-http `endpoint` (a store on the same private network).
        #[serde(default)]
        allow_http: bool,
    },
}

impl Default for ObjectStoreSettings {
    fn default() -> Self {
        ObjectStoreSettings::Local {
            directory: PathBuf::from("switchboard-data/attachments"),
        }
    }
}

/// Raster image types a browser shows and never runs: only these are served inline.
pub const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

impl AttachmentSettings {
    pub fn allows(&self, content_type: &str) -> bool {
        self.allowed_types.iter().any(|t| t == content_type)
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.max_bytes == 0 || self.max_bytes > 1024 * 1024 * 1024 {
            return Err("attachments.max_bytes must be between 1 and 1 GiB".into());
        }
        if self.link_ttl_s == 0
            || self.max_per_conversation == 0
            || self.max_concurrent_uploads == 0
            || self.upload_timeout_s == 0
            || self.sweep_interval_s == 0
        {
            return Err("attachments: link_ttl_s, max_per_conversation, max_concurrent_uploads, upload_timeout_s and sweep_interval_s must be positive".into());
        }
        for kind in &self.allowed_types {
            let plain = kind.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && kind.bytes().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || b"/+.-".contains(&c)
                    })
            });
            if !plain {
                return Err(format!(
                    "attachments.allowed_types: {kind:?} is not a lower-case media type like \"image/png\""
                ));
            }
        }
        if let ObjectStoreSettings::S3 { bucket, .. } = &self.store {
            if bucket.is_empty() {
                return Err("attachments.store: an s3 store needs a bucket".into());
            }
        }
        Ok(())
    }
}
