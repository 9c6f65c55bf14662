#[allow(unused_imports)]
pub use progenitor_client::{ByteStream, ClientInfo, Error, ResponseValue};
#[allow(unused_imports)]
use progenitor_client::{encode_path, ClientHooks, OperationInfo, RequestBuilderExt};
/// Types used as operation parameters and responses.
#[allow(clippy::all)]
pub mod types {
    ///`AuthenticationResponse`
    #[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
    pub struct AuthenticationResponse {
        pub access_token_data: TokenSchema,
        pub company_id: i64,
        pub refresh_token_data: TokenSchema,
        pub user_id: ::std::string::String,
    }
    ///`HttpValidationError`
    #[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug, Default)]
    pub struct HttpValidationError {
        #[serde(default, skip_serializing_if = "::std::vec::Vec::is_empty")]
        pub detail: ::std::vec::Vec<ValidationError>,
    }
    ///`LocationItem`
    #[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
    #[serde(untagged)]
    pub enum LocationItem {
        String(::std::string::String),
        Integer(i64),
    }
    impl ::std::fmt::Display for LocationItem {
        fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
            match self {
                Self::String(x) => x.fmt(f),
                Self::Integer(x) => x.fmt(f),
            }
        }
    }
    impl ::std::convert::From<i64> for LocationItem {
        fn from(value: i64) -> Self {
            Self::Integer(value)
        }
    }
    ///`TokenSchema`
    #[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
    pub struct TokenSchema {
        pub expires: crate::expiry::Expiry,
        pub token: crate::secret::SecretToken,
    }
    ///`ValidationError`
    #[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
    pub struct ValidationError {
        pub loc: ::std::vec::Vec<LocationItem>,
        pub msg: ::std::string::String,
        #[serde(rename = "type")]
        pub type_: ::std::string::String,
    }
    /// Error types.
    pub mod error {
        /// Error from a `TryFrom` or `FromStr` implementation.
        pub struct ConversionError(::std::borrow::Cow<'static, str>);
        impl ::std::error::Error for ConversionError {}
        impl ::std::fmt::Display for ConversionError {
            fn fmt(
                &self,
                f: &mut ::std::fmt::Formatter<'_>,
            ) -> Result<(), ::std::fmt::Error> {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }
        impl ::std::fmt::Debug for ConversionError {
            fn fmt(
                &self,
                f: &mut ::std::fmt::Formatter<'_>,
            ) -> Result<(), ::std::fmt::Error> {
                ::std::fmt::Debug::fmt(&self.0, f)
            }
        }
        impl From<&'static str> for ConversionError {
            fn from(value: &'static str) -> Self {
                Self(value.into())
            }
        }
        impl From<String> for ConversionError {
            fn from(value: String) -> Self {
                Self(value.into())
            }
        }
    }
}
#[derive(Clone, Debug)]
/**Client for Refresh token API

Version: 1.0.0*/
pub struct Client {
    pub(crate) baseurl: String,
    pub(crate) client: reqwest::Client,
    pub(crate) inner: crate::transport::Transport,
}
impl Client {
    /// Create a new client.
    ///
    /// `baseurl` is the base URL provided to the internal
    /// `reqwest::Client`, and should include a scheme and hostname,
    /// as well as port and a path stem if applicable.
    pub fn new(baseurl: &str, inner: crate::transport::Transport) -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        let client = {
            let dur = ::std::time::Duration::from_secs(15u64);
            reqwest::ClientBuilder::new().connect_timeout(dur).timeout(dur)
        };
        #[cfg(target_arch = "wasm32")]
        let client = reqwest::ClientBuilder::new();
        Self::new_with_client(baseurl, client.build().unwrap(), inner)
    }
    /// Construct a new client with an existing `reqwest::Client`,
    /// allowing more control over its configuration.
    ///
    /// `baseurl` is the base URL provided to the internal
    /// `reqwest::Client`, and should include a scheme and hostname,
    /// as well as port and a path stem if applicable.
    pub fn new_with_client(
        baseurl: &str,
        client: reqwest::Client,
        inner: crate::transport::Transport,
    ) -> Self {
        Self {
            baseurl: baseurl.to_string(),
            client,
            inner,
        }
    }
}
impl ClientInfo<crate::transport::Transport> for Client {
    fn api_version() -> &'static str {
        "1.0.0"
    }
    fn baseurl(&self) -> &str {
        self.baseurl.as_str()
    }
    fn client(&self) -> &reqwest::Client {
        &self.client
    }
    fn inner(&self) -> &crate::transport::Transport {
        &self.inner
    }
}
const _: () = {
    #[allow(dead_code)]
    fn assert_client_hooks()
    where
        Client: ClientHooks<crate::transport::Transport>,
    {}
};
#[allow(clippy::all)]
impl Client {
    /**Get the AccessToken And Refresh Token

Exchanges a refresh token for a new access token and a new refresh token. Refresh tokens rotate: after a successful call only the returned refresh token is valid. A 401 means the refresh token was rejected (invalid, expired or already used) and new tokens must be created with `POST /token`; it does not concern an email or password.

Sends a `POST` request to `/token/refresh`

Arguments:
- `refresh_token`: The previously created valid refresh token
*/
    pub async fn refresh_tokens<'a>(
        &'a self,
        refresh_token: &'a str,
    ) -> Result<ResponseValue<types::AuthenticationResponse>, Error<ByteStream>> {
        let url = format!("{}/token/refresh", self.baseurl,);
        let mut header_map = ::reqwest::header::HeaderMap::with_capacity(1usize);
        header_map
            .append(
                ::reqwest::header::HeaderName::from_static("api-version"),
                ::reqwest::header::HeaderValue::from_static(Self::api_version()),
            );
        #[allow(unused_mut)]
        let mut request = self
            .client
            .post(url)
            .header(
                ::reqwest::header::ACCEPT,
                ::reqwest::header::HeaderValue::from_static("application/json"),
            )
            .query(&progenitor_client::QueryParam::new("refresh_token", &refresh_token))
            .headers(header_map)
            .build()?;
        let info = OperationInfo {
            operation_id: "refresh_tokens",
        };
        self.pre(&mut request, &info).await?;
        let result = self.exec(request, &info).await;
        self.post(&result, &info).await?;
        let response = result?;
        match response.status().as_u16() {
            200u16 => ResponseValue::from_response(response).await,
            401u16 => Err(Error::ErrorResponse(ResponseValue::stream(response))),
            403u16 => Err(Error::ErrorResponse(ResponseValue::stream(response))),
            422u16 => Err(Error::ErrorResponse(ResponseValue::stream(response))),
            429u16 => Err(Error::ErrorResponse(ResponseValue::stream(response))),
            500u16 => Err(Error::ErrorResponse(ResponseValue::stream(response))),
            503u16 => Err(Error::ErrorResponse(ResponseValue::stream(response))),
            504u16 => Err(Error::ErrorResponse(ResponseValue::stream(response))),
            _ => Err(Error::UnexpectedResponse(response)),
        }
    }
}
/// Items consumers will typically use such as the Client.
pub mod prelude {
    #[allow(unused_imports)]
    pub use super::Client;
}
impl Client {
    /// `refresh_tokens` with its required arguments only (`None` for every optional one): what the hand-written layer calls, so that an optional parameter upstream adds never breaks it.
    pub async fn refresh_tokens_required<'a>(
        &'a self,
        refresh_token: &'a str,
    ) -> Result<ResponseValue<types::AuthenticationResponse>, Error<ByteStream>> {
        self.refresh_tokens(refresh_token).await
    }
}
