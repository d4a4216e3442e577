//! Files and images in a conversation (issue 18): the object store holding their bytes,
//! the checks an upload must pass (size, type allowlist, magic bytes), the signed
//! download links, and the sweep that deletes files once their conversation's retention
//! ends.
//!
//! An upload is checked whole before anything is stored; its bytes go to the object
//! store under `<conversation>/<attachment>` and only then is its description written to
//! Redis (`store/attachments.rs`), so a file is either complete and known or not there.
//! Redis never holds file bytes.

mod check;
mod sweep;

use std::sync::Arc;

use bytes::Bytes;
use object_store::{path::Path as ObjectPath, ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};

pub use check::{clean_name, content_type_of};
pub use sweep::sweep;

use crate::{
    config::{AttachmentSettings, ObjectStoreSettings},
    error::Error,
    protocol::{Attachment, Role},
};

/// What Redis keeps of one file: the event's description plus who uploaded it, so only
/// its uploader can send it and only those who may read the conversation fetch it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAttachment {
    #[serde(flatten)]
    pub attachment: Attachment,
    pub by_role: Role,
    pub by_id: String,
    /// The conversation's visitor: who the file belongs to for history permissions.
    pub visitor_id: String,
    pub created_at: u64,
}

/// The object store and the upload limits of this node.
#[derive(Clone)]
pub struct Attachments {
    settings: Arc<AttachmentSettings>,
    /// Built at the first use: a local directory is created only when a file comes.
    objects: Arc<OnceCell<Arc<dyn ObjectStore>>>,
    uploads: Arc<Semaphore>,
}

impl Attachments {
    /// Checks the store settings now (an S3 store is built, not contacted), so a bad
    /// `[attachments.store]` stops the start instead of the first upload.
    pub fn new(settings: &AttachmentSettings) -> Result<Attachments, String> {
        let objects = Arc::new(OnceCell::new());
        if let ObjectStoreSettings::S3 { .. } = settings.store {
            let store = build(&settings.store)?;
            let _ = objects.set(store);
        }
        Ok(Attachments {
            settings: Arc::new(settings.clone()),
            objects,
            uploads: Arc::new(Semaphore::new(settings.max_concurrent_uploads)),
        })
    }

    pub fn settings(&self) -> &AttachmentSettings {
        &self.settings
    }

    /// A slot to read one upload in, or `rate_limited` when all are taken: each holds up
    /// to `max_bytes` in memory, so their number is what bounds uploads' memory.
    pub fn upload_slot(&self) -> Result<SemaphorePermit<'_>, Error> {
        self.uploads.try_acquire().map_err(|_| {
            Error::RateLimitedBecause("too many uploads at once, retry shortly".into())
        })
    }

    /// Checks an upload's declared type and bytes against the settings.
    pub fn check(&self, content_type: &str, bytes: &[u8]) -> Result<(), Error> {
        check::check(&self.settings, content_type, bytes)
    }

    async fn objects(&self) -> Result<&Arc<dyn ObjectStore>, Error> {
        self.objects
            .get_or_try_init(|| async { build(&self.settings.store) })
            .await
            .map_err(|cause| {
                tracing::error!(%cause, "cannot open the attachment store");
                Error::Unavailable
            })
    }

    pub async fn put(&self, conversation: &str, id: &str, bytes: Bytes) -> Result<(), Error> {
        let objects = self.objects().await?;
        objects
            .put(&path(conversation, id), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(unavailable("store an attachment"))
    }

    /// A file's bytes; `None` when the store no longer has it.
    pub async fn get(&self, conversation: &str, id: &str) -> Result<Option<Bytes>, Error> {
        let objects = self.objects().await?;
        match objects.get(&path(conversation, id)).await {
            Ok(found) => found
                .bytes()
                .await
                .map(Some)
                .map_err(unavailable("read an attachment")),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(unavailable("read an attachment")(err)),
        }
    }

    /// Deletes one file (an upload that could not be recorded). Missing is fine.
    pub async fn delete(&self, conversation: &str, id: &str) -> Result<(), Error> {
        let objects = self.objects().await?;
        match objects.delete(&path(conversation, id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(unavailable("delete an attachment")(err)),
        }
    }

    /// Deletes every file of a conversation; returns how many there were.
    pub async fn delete_conversation(&self, conversation: &str) -> Result<u64, Error> {
        use futures_util::TryStreamExt;
        let objects = self.objects().await?;
        let prefix = ObjectPath::from(conversation);
        let listed: Vec<_> = objects
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(unavailable("list a conversation's attachments"))?;
        for meta in &listed {
            match objects.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(unavailable("delete an attachment")(err)),
            }
        }
        Ok(listed.len() as u64)
    }
}

fn path(conversation: &str, id: &str) -> ObjectPath {
    ObjectPath::from(conversation).child(id)
}

fn unavailable(what: &'static str) -> impl Fn(object_store::Error) -> Error {
    move |cause| {
        tracing::warn!(%cause, "cannot {what}");
        Error::Unavailable
    }
}

fn build(settings: &ObjectStoreSettings) -> Result<Arc<dyn ObjectStore>, String> {
    match settings {
        ObjectStoreSettings::Local { directory } => {
            std::fs::create_dir_all(directory)
                .map_err(|err| format!("cannot create {}: {err}", directory.display()))?;
            object_store::local::LocalFileSystem::new_with_prefix(directory)
                .map(|store| Arc::new(store) as Arc<dyn ObjectStore>)
                .map_err(|err| err.to_string())
        }
        ObjectStoreSettings::S3 {
            bucket,
            region,
            endpoint,
            access_key_id,
            secret_access_key,
            allow_http,
        } => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_allow_http(*allow_http);
            if let Some(region) = region {
                builder = builder.with_region(region);
            }
            if let Some(endpoint) = endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(key) = access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = secret_access_key {
                builder = builder.with_secret_access_key(secret.expose());
            }
            builder
                .build()
                .map(|store| Arc::new(store) as Arc<dyn ObjectStore>)
                .map_err(|err| err.to_string())
        }
    }
}

/// A conversation's file as Redis describes it; `None` when the ids name no file of it
/// (ids that could not be the hub's own are not looked up).
pub async fn find(
    store: &crate::store::Store,
    conversation: &str,
    id: &str,
) -> Result<Option<StoredAttachment>, Error> {
    if !plain_id(conversation) || !plain_id(id) {
        return Ok(None);
    }
    match store.attachment(conversation, id).await? {
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|_| Error::Unavailable),
        None => Ok(None),
    }
}

/// Whether ids from a URL can name an object: the hub's own ids are `<prefix>_<hex>`,
/// so anything else (dots, slashes) never reaches the store.
pub fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_store_is_built_from_settings_without_contacting_it() {
        let settings = AttachmentSettings {
            store: ObjectStoreSettings::S3 {
                bucket: "chat-files".into(),
                region: Some("eu-west-1".into()),
                endpoint: Some("http://127.0.0.1:9000".into()),
                access_key_id: Some("key".into()),
                secret_access_key: Some(crate::config::Secret::new("secret")),
                allow_http: true,
            },
            ..AttachmentSettings::default()
        };
        assert!(Attachments::new(&settings).is_ok());
    }

    #[test]
    fn ids_from_urls_are_plain() {
        assert!(plain_id("c_0123abcd"));
        for bad in ["", "..", "c_1/../x", "a.b", "c_1%2f"] {
            assert!(!plain_id(bad), "{bad}");
        }
    }
}
