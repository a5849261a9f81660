//! A remote in an S3-compatible bucket (AWS S3, MinIO, Ceph, moto): object_store's client does
//! the request signing, retries and multipart uploads. Credentials come from the standard AWS
//! environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, …) or the instance's role; the manifest never holds secrets.

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use crate::error::{RemoteError, Result};

pub(crate) fn open(
    name: &str,
    bucket: &str,
    prefix: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(endpoint) = endpoint {
        // A local S3-compatible server is usually plain HTTP; AWS itself never is.
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(region) = region {
        builder = builder.with_region(region);
    }
    let store = builder.build().map_err(|source| RemoteError::Setup {
        name: name.to_string(),
        location: format!("s3://{bucket}/{prefix}"),
        source: Box::new(source),
    })?;
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    })
}
