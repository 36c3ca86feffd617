//! The S3 requests termtrail makes, as a blocking client over aws-sdk-s3
//! (its own small tokio runtime, so it can be used from synchronous code and
//! from a thread of an async program alike), and ranged reading of objects.
//!
//! Configuration is AWS's own chain (aws-config): credentials from the
//! environment, profiles (`AWS_PROFILE`, SSO, `credential_process`), web
//! identity or the instance/container metadata service; the region from
//! `AWS_REGION`/the profile (default `us-east-1`); `AWS_ENDPOINT_URL` (or
//! `AWS_ENDPOINT_URL_S3`) for S3-compatible servers. Path-style addressing
//! is used when an endpoint is set (local servers have no virtual-host DNS)
//! or `TERMTRAIL_S3_PATH_STYLE=1`. Request checksums are sent only when the
//! operation requires them: many S3-compatible servers reject the SDK's
//! default CRC32 trailers.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::error::from_sdk;
use crate::{ErrorKind, Object, StoreError};

/// An object's user metadata (`x-amz-meta-*`), by name.
pub type Metadata = HashMap<String, String>;

/// Part size used for uploads (S3 wants at least 5 MiB for every part but
/// the last).
pub const PART_SIZE: u64 = 8 << 20;

/// Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` can still delete.
    Governance,
    /// Nobody, root included, can delete or shorten it before it ends.
    Compliance,
}

/// Server-side encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3 (AES256).
    Aes256,
    /// SSE-KMS, with this key (None: the account's default aws/s3 key).
    Kms(Option<String>),
}

/// How uploaded recordings are protected in the bucket.
#[derive(Debug, Clone, Default)]
pub struct Protection {
    /// Object Lock: mode and days of retention from the upload's start
    /// (the bucket must have Object Lock enabled).
    pub retain: Option<(LockMode, u32)>,
    /// Server-side encryption.
    pub sse: Option<Sse>,
}

/// A blocking client for one bucket and key prefix: its own small tokio
/// runtime drives aws-sdk-s3, so it serves synchronous code and threads of
/// an async program alike. Cloning it shares the runtime and connections.
#[derive(Clone)]
pub struct S3Client {
    rt: Arc<tokio::runtime::Runtime>,
    client: Client,
    bucket: String,
    prefix: String,
    protection: Protection,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Client(s3://{}/{})", self.bucket, self.prefix)
    }
}

impl S3Client {
    /// Loads the AWS configuration and makes a client. Nothing is sent yet.
    pub fn connect(bucket: &str, prefix: &str) -> Result<S3Client, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| StoreError::io(format!("cannot start the S3 client's runtime: {e}")))?;
        let client = rt.block_on(client());
        Ok(S3Client {
            rt: Arc::new(rt),
            client,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            protection: Protection::default(),
        })
    }

    /// Protects what this client uploads from now on.
    pub fn with_protection(mut self, p: Protection) -> S3Client {
        self.protection = p;
        self
    }

    fn retain_until(
        &self,
    ) -> Option<(
        aws_sdk_s3::types::ObjectLockMode,
        aws_sdk_s3::primitives::DateTime,
    )> {
        let (mode, days) = self.protection.retain?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mode = match mode {
            LockMode::Governance => aws_sdk_s3::types::ObjectLockMode::Governance,
            LockMode::Compliance => aws_sdk_s3::types::ObjectLockMode::Compliance,
        };
        let until =
            aws_sdk_s3::primitives::DateTime::from_secs((now + u64::from(days) * 86_400) as i64);
        Some((mode, until))
    }

    fn sse(
        &self,
    ) -> (
        Option<aws_sdk_s3::types::ServerSideEncryption>,
        Option<String>,
    ) {
        use aws_sdk_s3::types::ServerSideEncryption as E;
        match &self.protection.sse {
            None => (None, None),
            Some(Sse::Aes256) => (Some(E::Aes256), None),
            Some(Sse::Kms(key)) => (Some(E::AwsKms), key.clone()),
        }
    }

    /// Whether uploads carry a SHA-256 checksum: S3 requires one on writes
    /// with a retention period.
    fn checksums(&self) -> Option<aws_sdk_s3::types::ChecksumAlgorithm> {
        self.protection
            .retain
            .map(|_| aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix (empty or ending in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `s3://bucket/key`, for messages.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The full key of a key relative to the prefix.
    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    /// Checks that the bucket exists and is reachable with these
    /// credentials.
    pub fn check(&self) -> Result<(), StoreError> {
        let r = self
            .rt
            .block_on(self.client.head_bucket().bucket(&self.bucket).send());
        r.map(drop).map_err(|e| {
            // HeadBucket answers 404/403 without an error body.
            let status = e.raw_response().map(|r| r.status().as_u16());
            match status {
                Some(404) => StoreError::new(
                    ErrorKind::NoSuchBucket,
                    format!(
                        "S3 bucket s3://{}: the bucket does not exist: check the name and the region",
                        self.bucket
                    ),
                ),
                Some(403) => StoreError::new(
                    ErrorKind::AccessDenied,
                    format!(
                        "S3 bucket s3://{}: access denied: check the credentials' IAM policy (docs/storage.md)",
                        self.bucket
                    ),
                ),
                _ => from_sdk("bucket", &format!("s3://{}", self.bucket), &e),
            }
        })
    }

    /// Every object under `prefix` (a full key prefix), in key order,
    /// starting after `start_after` when given.
    pub fn list(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<Object>, StoreError> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_start_after(start_after.map(str::to_string))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page
                    .map_err(|e| from_sdk("list", &format!("s3://{}/{prefix}", self.bucket), &e))?;
                for o in page.contents() {
                    if let Some(key) = o.key() {
                        out.push(Object {
                            key: key.to_string(),
                            size: o.size().unwrap_or(0).max(0) as u64,
                        });
                    }
                }
            }
            Ok(out)
        })
    }

    /// An object's size and user metadata.
    pub fn head(&self, key: &str) -> Result<(u64, Metadata), StoreError> {
        let r = self
            .rt
            .block_on(
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .map_err(|e| from_sdk("head", &self.url(key), &e))?;
        let size = r.content_length().unwrap_or(0).max(0) as u64;
        Ok((size, r.metadata().cloned().unwrap_or_default()))
    }

    /// Bytes `[start, end)` of an object.
    pub fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Vec<u8>, StoreError> {
        if end <= start {
            return Ok(Vec::new());
        }
        self.rt.block_on(async {
            let r = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .range(format!("bytes={start}-{}", end - 1))
                .send()
                .await
                .map_err(|e| from_sdk("get", &self.url(key), &e))?;
            let body = r.body.collect().await.map_err(|e| {
                StoreError::new(
                    ErrorKind::Unreachable,
                    format!("S3 get {}: {e}", self.url(key)),
                )
            })?;
            Ok(body.into_bytes().to_vec())
        })
    }

    /// Streams a whole object into `out`.
    pub fn download(&self, key: &str, out: &mut dyn Write) -> Result<u64, StoreError> {
        self.rt.block_on(async {
            let mut r = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| from_sdk("get", &self.url(key), &e))?;
            let mut n = 0u64;
            while let Some(bytes) = r.body.try_next().await.map_err(|e| {
                StoreError::new(
                    ErrorKind::Unreachable,
                    format!("S3 get {}: {e}", self.url(key)),
                )
            })? {
                out.write_all(&bytes)
                    .map_err(|e| StoreError::io(format!("writing {}: {e}", self.url(key))))?;
                n += bytes.len() as u64;
            }
            Ok(n)
        })
    }

    /// Uploads a whole file: one PutObject when small, else a multipart
    /// upload in [`PART_SIZE`] parts. Create-only: an existing object of
    /// that key is never replaced.
    pub fn put_file(&self, key: &str, path: &Path, meta: &Metadata) -> Result<(), StoreError> {
        let len = std::fs::metadata(path)
            .map_err(|e| StoreError::io(format!("{}: {e}", path.display())))?
            .len();
        if len <= PART_SIZE {
            let body = std::fs::read(path)
                .map_err(|e| StoreError::io(format!("{}: {e}", path.display())))?;
            return self.put(key, body, meta);
        }
        let mut mpu = self.create_multipart(key, meta)?;
        let mut f =
            File::open(path).map_err(|e| StoreError::io(format!("{}: {e}", path.display())))?;
        let mut at = 0;
        while at < len {
            let n = PART_SIZE.min(len - at);
            let part = read_at(&mut f, at, n)
                .map_err(|e| StoreError::io(format!("{}: {e}", path.display())))?;
            let number = mpu.parts.len() as i32 + 1;
            self.upload_part(&mut mpu, number, part)?;
            at += n;
        }
        self.complete(&mpu)
    }

    /// One PutObject, create-only.
    pub fn put(&self, key: &str, body: Vec<u8>, meta: &Metadata) -> Result<(), StoreError> {
        let body_len = body.len() as u64;
        let (sse, kms) = self.sse();
        let lock = self.retain_until();
        self.rt
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type("application/zstd")
                    .set_metadata(Some(meta.clone()))
                    .if_none_match("*")
                    .set_server_side_encryption(sse)
                    .set_ssekms_key_id(kms)
                    .set_object_lock_mode(lock.as_ref().map(|l| l.0.clone()))
                    .set_object_lock_retain_until_date(lock.map(|l| l.1))
                    .set_checksum_algorithm(self.checksums())
                    .body(ByteStream::from(body))
                    .customize()
                    .config_override(write_timeouts(body_len))
                    .send(),
            )
            .map(drop)
            .map_err(|e| from_sdk("put", &self.url(key), &e))
    }

    /// Starts a multipart upload.
    pub fn create_multipart(&self, key: &str, meta: &Metadata) -> Result<Multipart, StoreError> {
        let (sse, kms) = self.sse();
        let lock = self.retain_until();
        let r = self
            .rt
            .block_on(
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type("application/zstd")
                    .set_metadata(Some(meta.clone()))
                    .set_server_side_encryption(sse)
                    .set_ssekms_key_id(kms)
                    .set_object_lock_mode(lock.as_ref().map(|l| l.0.clone()))
                    .set_object_lock_retain_until_date(lock.map(|l| l.1))
                    .set_checksum_algorithm(self.checksums())
                    .customize()
                    .config_override(write_timeouts(0))
                    .send(),
            )
            .map_err(|e| from_sdk("create upload", &self.url(key), &e))?;
        let id = r.upload_id().ok_or_else(|| {
            StoreError::new(
                ErrorKind::Service,
                format!("S3 create upload {}: no upload id", self.url(key)),
            )
        })?;
        Ok(Multipart {
            key: key.to_string(),
            id: id.to_string(),
            parts: Vec::new(),
        })
    }

    /// Uploads (or replaces) part `number` (1-based).
    pub fn upload_part(
        &self,
        mpu: &mut Multipart,
        number: i32,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        let body_len = body.len() as u64;
        let r = self
            .rt
            .block_on(
                self.client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(&mpu.key)
                    .upload_id(&mpu.id)
                    .part_number(number)
                    .set_checksum_algorithm(self.checksums())
                    .body(ByteStream::from(body))
                    .customize()
                    .config_override(write_timeouts(body_len))
                    .send(),
            )
            .map_err(|e| from_sdk("upload part", &self.url(&mpu.key), &e))?;
        let part = (
            r.e_tag().unwrap_or_default().to_string(),
            r.checksum_sha256().map(str::to_string),
        );
        let idx = (number - 1) as usize;
        if idx < mpu.parts.len() {
            mpu.parts[idx] = part;
        } else {
            mpu.parts.push(part);
        }
        Ok(())
    }

    /// Completes a multipart upload.
    pub fn complete(&self, mpu: &Multipart) -> Result<(), StoreError> {
        let parts = mpu
            .parts
            .iter()
            .enumerate()
            .map(|(i, (etag, sha256))| {
                CompletedPart::builder()
                    .part_number(i as i32 + 1)
                    .e_tag(etag)
                    .set_checksum_sha256(sha256.clone())
                    .build()
            })
            .collect();
        self.rt
            .block_on(
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&mpu.key)
                    .upload_id(&mpu.id)
                    // Create-only, like PutObject: never over an object.
                    .if_none_match("*")
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send(),
            )
            .map(drop)
            .map_err(|e| from_sdk("complete upload", &self.url(&mpu.key), &e))
    }

    /// Puts the configured Object Lock retention on a completed object (a
    /// multipart upload asks for it when it starts, but not every
    /// S3-compatible server carries it over). No-op without retention.
    pub fn retain_object(&self, key: &str) -> Result<(), StoreError> {
        use aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};
        let Some((mode, until)) = self.retain_until() else {
            return Ok(());
        };
        let mode = match mode {
            aws_sdk_s3::types::ObjectLockMode::Compliance => ObjectLockRetentionMode::Compliance,
            _ => ObjectLockRetentionMode::Governance,
        };
        let retention = ObjectLockRetention::builder()
            .mode(mode)
            .retain_until_date(until)
            .build();
        self.rt
            .block_on(
                self.client
                    .put_object_retention()
                    .bucket(&self.bucket)
                    .key(key)
                    .retention(retention)
                    .set_checksum_algorithm(self.checksums())
                    .customize()
                    .config_override(write_timeouts(0))
                    .send(),
            )
            .map(drop)
            .map_err(|e| from_sdk("retention", &self.url(key), &e))
    }

    /// Gives up a multipart upload (its parts are discarded).
    pub fn abort(&self, mpu: &Multipart) -> Result<(), StoreError> {
        self.rt
            .block_on(
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&mpu.key)
                    .upload_id(&mpu.id)
                    .customize()
                    .config_override(write_timeouts(0))
                    .send(),
            )
            .map(drop)
            .map_err(|e| from_sdk("abort upload", &self.url(&mpu.key), &e))
    }

    /// Whether the server still has multipart upload `mpu` (one ListParts).
    /// Ok(false) when it answers that the upload (or its bucket) is gone.
    pub fn upload_exists(&self, mpu: &Multipart) -> Result<bool, StoreError> {
        let r = self.rt.block_on(
            self.client
                .list_parts()
                .bucket(&self.bucket)
                .key(&mpu.key)
                .upload_id(&mpu.id)
                .max_parts(1)
                .customize()
                .config_override(write_timeouts(0))
                .send(),
        );
        match r {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = from_sdk("list upload parts", &self.url(&mpu.key), &e);
                if err.status() == Some(404) || err.code() == Some("NoSuchUpload") {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Sets an object's tags (what is known only when a recording ends).
    pub fn tag(&self, key: &str, tags: &[(&str, String)]) -> Result<(), StoreError> {
        use aws_sdk_s3::types::{Tag, Tagging};
        let set: Vec<Tag> = tags
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(*k).value(v.clone()).build().ok())
            .collect();
        let tagging = Tagging::builder()
            .set_tag_set(Some(set))
            .build()
            .map_err(|e| {
                StoreError::new(
                    ErrorKind::Service,
                    format!("S3 tags for {}: {e}", self.url(key)),
                )
            })?;
        self.rt
            .block_on(
                self.client
                    .put_object_tagging()
                    .bucket(&self.bucket)
                    .key(key)
                    .tagging(tagging)
                    .customize()
                    .config_override(write_timeouts(0))
                    .send(),
            )
            .map(drop)
            .map_err(|e| from_sdk("tag", &self.url(key), &e))
    }

    /// A reader over an object, fetching ranges as they are read (blocks of
    /// `block` bytes, the last few kept): what the index and seeking need
    /// without downloading the whole object.
    pub fn open(&self, key: &str, size: u64, block: u64) -> RangeReader {
        RangeReader {
            client: self.clone(),
            key: key.to_string(),
            size,
            pos: 0,
            block: block.max(4096),
            cache: Vec::new(),
        }
    }
}

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub struct Multipart {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub id: String,
    /// ETags (and SHA-256 checksums, when sent) of the parts uploaded,
    /// part 1 first.
    pub parts: Vec<(String, Option<String>)>,
}

pub(crate) fn read_at(f: &mut File, at: u64, n: u64) -> io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0u8; n as usize];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// AWS's shared configuration (credentials chain, region, endpoints),
/// with rustls+ring as the HTTP client's TLS: what the S3 client and the
/// proxy's SigV4 signer use.
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}

async fn client() -> Client {
    let shared = sdk_config().await;
    let endpoint_set = std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let path_style = endpoint_set
        || std::env::var("TERMTRAIL_S3_PATH_STYLE").is_ok_and(|v| v == "1" || v == "true");
    let mut cfg = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        );
    if shared.region().is_none() {
        cfg = cfg.region(aws_sdk_s3::config::Region::new("us-east-1"));
    }
    Client::from_conf(cfg.build())
}

/// How long the SDK may wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one attempt of a request may take (reads, and the completion
/// of a multipart upload, which S3 may take minutes to answer).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long one attempt of an upload's request may take: 30 s, plus 1 s per
/// 32 KiB of body (an 8 MiB part: 286 s). A request S3 accepted and never
/// answers (a connection lost on the way without a reset) holds the
/// uploader, one thread for every recording of the process, until then:
/// 120 s for every request before, so a tail part lost that way delayed
/// everything by minutes even after S3 was back.
pub fn write_attempt_timeout(body: u64) -> Duration {
    Duration::from_secs(30 + body / (32 << 10))
}

/// The timeouts of an upload's request with `body` bytes.
fn write_timeouts(body: u64) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::new().timeout_config(
        aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(write_attempt_timeout(body))
            .build(),
    )
}

/// Reads an S3 object through ranged GETs (see [`S3Client::open`]).
pub struct RangeReader {
    client: S3Client,
    key: String,
    size: u64,
    pos: u64,
    block: u64,
    /// (block start, bytes), most recent last.
    cache: Vec<(u64, Vec<u8>)>,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let start = self.pos / self.block * self.block;
        let idx = match self.cache.iter().position(|(s, _)| *s == start) {
            Some(i) => i,
            None => {
                let end = (start + self.block).min(self.size);
                let bytes = self
                    .client
                    .get_range(&self.key, start, end)
                    .map_err(io::Error::other)?;
                if self.cache.len() >= 4 {
                    self.cache.remove(0);
                }
                self.cache.push((start, bytes));
                self.cache.len() - 1
            }
        };
        let data = &self.cache[idx].1;
        let off = (self.pos - start) as usize;
        if off >= data.len() {
            return Ok(0);
        }
        let n = buf.len().min(data.len() - off);
        buf[..n].copy_from_slice(&data[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(d) => self.size as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if new < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = new as u64;
        Ok(self.pos)
    }
}
