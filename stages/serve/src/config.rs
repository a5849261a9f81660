//! Server settings: a serde struct (also written into deploy bundles) with documented defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ServeError;

/// How a server runs. Every field has a default; unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Most sequences decoded together in one step (continuous batching). Default 16.
    pub max_batch: usize,
    /// Most sequences waiting to join the batch; beyond it requests get 503. Default 64.
    pub queue_capacity: usize,
    /// Seconds a client is told to wait (`Retry-After`) when the queue is full. Default 1.
    pub retry_after_s: u64,
    /// Largest accepted request body in bytes. Default 4 MiB (lm-evaluation-harness sends
    /// batches of token-id prompts).
    pub max_body_bytes: usize,
    /// Most choices per prompt (`n`). Default 8.
    pub max_n: usize,
    /// Most alternatives per position (`logprobs` / `top_logprobs`). Default 20.
    pub max_logprobs: usize,
    /// Seconds a client may take to send the request headers. Default 30.
    pub header_timeout_s: f64,
    /// Seconds a client may take to send the request body. Default 30.
    pub body_timeout_s: f64,
    /// Seconds one generation may run before it is stopped (504, or an error event in a
    /// stream). Default 600.
    pub request_timeout_s: f64,
    /// Seconds a shutdown waits for in-flight requests before closing connections. Default 30.
    pub shutdown_grace_s: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_batch: 16,
            queue_capacity: 64,
            retry_after_s: 1,
            max_body_bytes: 4 << 20,
            max_n: 8,
            max_logprobs: 20,
            header_timeout_s: 30.0,
            body_timeout_s: 30.0,
            request_timeout_s: 600.0,
            shutdown_grace_s: 30.0,
        }
    }
}

fn seconds(name: &str, v: f64) -> Result<Duration, ServeError> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ServeError::Config(format!(
                "`{name}` must be a positive number of seconds; got {v}"
            ))
        })
}

impl ServerConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ServeError> {
        for (name, v) in [
            ("max_batch", self.max_batch),
            ("queue_capacity", self.queue_capacity),
            ("max_body_bytes", self.max_body_bytes),
            ("max_n", self.max_n),
        ] {
            if v == 0 {
                return Err(ServeError::Config(format!("`{name}` must be at least 1")));
            }
        }
        self.header_timeout()?;
        self.body_timeout()?;
        self.request_timeout()?;
        seconds("shutdown_grace_s", self.shutdown_grace_s)?;
        Ok(())
    }

    pub fn header_timeout(&self) -> Result<Duration, ServeError> {
        seconds("header_timeout_s", self.header_timeout_s)
    }

    pub fn body_timeout(&self) -> Result<Duration, ServeError> {
        seconds("body_timeout_s", self.body_timeout_s)
    }

    pub fn request_timeout(&self) -> Result<Duration, ServeError> {
        seconds("request_timeout_s", self.request_timeout_s)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::try_from_secs_f64(self.shutdown_grace_s).unwrap_or(Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_unknown_keys_rejected() {
        ServerConfig::default().validate().unwrap();
        let c: ServerConfig = serde_json::from_str(r#"{"max_batch": 4}"#).unwrap();
        assert_eq!(c.max_batch, 4);
        assert_eq!(c.queue_capacity, 64);
        let e = serde_json::from_str::<ServerConfig>(r#"{"max_bach": 4}"#).unwrap_err();
        assert!(e.to_string().contains("max_bach"), "{e}");
    }

    #[test]
    fn zero_or_negative_values_are_rejected() {
        let c = ServerConfig {
            max_batch: 0,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("max_batch"));
        let c = ServerConfig {
            request_timeout_s: -1.0,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("request_timeout_s"));
    }
}
