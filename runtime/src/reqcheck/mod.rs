//! Speaking to ReqCheck: its record types ([`targets`]), the HTTP client ([`client`]) and how a
//! heartbeat becomes an extraction window ([`window`]).

pub mod base_url;
pub mod client;
pub mod credentials;
pub mod proxy;
pub mod record_schema;
pub mod retry;
pub mod targets;
pub mod window;

pub use base_url::{BaseUrlError, parse_base_url};
pub use client::{ClientError, ImportResponse, ImportStatus, ReqCheckClient};
pub use credentials::{Credentials, CredentialsSource, CredentialsSources, Secret};
pub use proxy::{ProxySetting, ProxyUrlError};
pub use retry::RetryPolicy;
pub use targets::Target;
