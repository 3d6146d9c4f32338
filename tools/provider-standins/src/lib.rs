//! Local stand-ins for Herald's third-party messaging providers (Twilio, Africa's Talking, Brevo,
//! Meta WhatsApp Cloud), replaced only at the network boundary: one HTTP server speaks each
//! provider's documented request and response formats under its own path prefix.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use provider_standins::{Fault, Provider, StandIns};
//!
//! let standins = StandIns::builder()
//!     .twilio_account("AC00000000000000000000000000000001", "twilio-token")
//!     .africastalking_account("sandbox", "at-key")
//!     .brevo_key("xkeysib-local")
//!     .meta_phone_number("106540352242922", "meta-token")
//!     .build()
//!     .spawn()
//!     .await?;
//! // Point Herald at standins.twilio_base_url(), .africastalking_base_url(), ...
//! standins.fail_next(Provider::Twilio, 2, Fault::Status(503));
//! # Ok(()) }
//! ```
//!
//! The same control surface is served over HTTP under `/_standin` for the process mode (see the
//! `provider-standins` binary).
//!
//! # Twilio status callbacks
//!
//! Like Twilio, a Message created with a `StatusCallback` URL (absolute `http(s)`, else 400 /
//! 21609) is reported on later: a background task POSTs `sent`, then `delivered`, to that URL as
//! Twilio does (form fields `AccountSid`, `ApiVersion`, `ChannelPrefix`, `From`, `To`,
//! `MessageSid`, `SmsSid`, `MessageStatus`, `SmsStatus`, `MessagingServiceSid` when one was used,
//! `ErrorCode` for `undelivered`/`failed`; headers `X-Twilio-Signature` keyed with the account's
//! auth token over the URL as given, `User-Agent: TwilioProxy/1.1`, `I-Twilio-Idempotency-Token`).
//! Each accepted message (with or without a callback URL) takes the next queued
//! [`DeliveryOutcome`], else the default:
//!
//! ```no_run
//! # async fn demo(standins: provider_standins::RunningStandIns) -> anyhow::Result<()> {
//! use std::time::Duration;
//! use provider_standins::DeliveryOutcome;
//!
//! standins.twilio_outcome_next(1, DeliveryOutcome::Undelivered { error_code: 30005 });
//! standins.set_twilio_default_outcome(DeliveryOutcome::NoCallback); // tests posting their own
//! // ... send ...
//! let attempts = standins
//!     .wait_for_status_callbacks(2, Duration::from_secs(5))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Each status waits [`DEFAULT_STATUS_CALLBACK_DELAY`] first
//! ([`StandInsBuilder::status_callback_delay`]); an attempt that gets no answer within
//! [`STATUS_CALLBACK_TIMEOUT`] or a non-2xx one is retried after
//! [`STATUS_CALLBACK_RETRY_DELAY`], [`STATUS_CALLBACK_ATTEMPTS`] attempts in all (real Twilio
//! retries only connection failures); every attempt is recorded ([`CallbackAttempt`]); shutdown
//! stops pending callbacks. Only loopback receivers are called unless
//! [`StandInsBuilder::allow_remote_status_callbacks`] allows others.
//!
//! # WhatsApp templates and the 24-hour customer service window
//!
//! Both WhatsApp providers enforce WhatsApp's rules (docs/whatsapp-templates.md in the repository
//! cites the wire formats):
//!
//! - **Meta**: a phone number registered with its business account
//!   ([`StandInsBuilder::meta_business_phone_number`]) sends that account's registered
//!   [`MetaTemplate`]s, which `GET /{version}/{waba_id}/message_templates` lists (`name`,
//!   `fields`, `limit` up to 100, `after` cursor; `data[]` and `paging.cursors`). A template send
//!   must name an `APPROVED` template in that language (else 404 / 132001; `PAUSED` 400 /
//!   132015, `DISABLED` 400 / 132016) with header, body and button parameters matching its
//!   placeholders (count: 400 / 132000, format: 400 / 132012); the journal gets the body with
//!   the parameters filled in. Any other send needs the customer's window open, else 400 /
//!   131047.
//! - **Twilio**: [`TwilioContent`]s are served by the Content API at
//!   [`RunningStandIns::twilio_content_base_url`] (`GET /v1/Content/{sid}` and
//!   `/ApprovalRequests`) and sent with `ContentSid` + `ContentVariables` (unknown sid 400 /
//!   21655, bad variables 400 / 21656). A WhatsApp message is created (201) and then fails
//!   through the status callback, whatever outcome was queued: 63027 for a content not
//!   `approved`, 63028 for variables the content lacks, 63016 for free-form (no `ContentSid`)
//!   outside the window.
//!
//! A customer opens (or extends) a window by writing in: [`RunningStandIns::meta_inbound`] /
//! `POST /_standin/meta/inbound` and [`RunningStandIns::twilio_inbound`] /
//! `POST /_standin/twilio/inbound`, which can also deliver the provider's signed webhook
//! (`X-Hub-Signature-256`, `X-Twilio-Signature`) to a loopback receiver:
//!
//! ```no_run
//! # async fn demo(standins: provider_standins::RunningStandIns) -> anyhow::Result<()> {
//! use provider_standins::{MetaInbound, TwilioInbound};
//!
//! let opened = standins
//!     .meta_inbound(
//!         MetaInbound::new("106540352242922", "+260971234567", "Is it still on?")
//!             .webhook("http://127.0.0.1:8080/webhooks/meta", "app-secret"),
//!     )
//!     .await?;
//! assert_eq!(opened.webhook_status, Some(200));
//! standins
//!     .twilio_inbound(TwilioInbound::new(
//!         "AC00000000000000000000000000000001",
//!         "whatsapp:+260971234567",
//!         "whatsapp:+14155238886",
//!         "Yes",
//!     ))
//!     .await?;
//! # Ok(()) }
//! ```

mod accounts;
mod address;
mod africastalking;
mod brevo;
mod callbacks;
mod control;
mod faults;
mod gate;
mod ids;
mod inbound;
mod journal;
mod meta;
mod meta_templates;
mod provider;
mod twilio;
mod twilio_content;
mod windows;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use accounts::{
    Accounts, AfricasTalkingAccount, BrevoAccount, MetaPhoneNumber, MetaTemplate, TwilioAccount,
    TwilioApiKey, TwilioContent,
};
pub use callbacks::{
    DEFAULT_STATUS_CALLBACK_DELAY, DeliveryOutcome, STATUS_CALLBACK_ATTEMPTS,
    STATUS_CALLBACK_RETRY_DELAY, STATUS_CALLBACK_TIMEOUT,
};
pub use faults::Fault;
pub use inbound::{InboundOutcome, MetaInbound, TwilioInbound};
pub use journal::{CallbackAttempt, CapturedRequest, Channel, SentMessage};
pub use provider::Provider;
pub use windows::CUSTOMER_SERVICE_WINDOW;

use accounts::Registry;
use callbacks::Callbacks;
use faults::FaultQueue;
use journal::Journal;

/// Graph API version in [`RunningStandIns::meta_graph_base_url`]; any `vN.N` is served.
pub const META_GRAPH_VERSION: &str = "v21.0";
/// Path prefix of the Twilio Content API (real host `https://content.twilio.com`).
pub const TWILIO_CONTENT_PREFIX: &str = "/twilio-content";
/// Default cap on captured requests (and, separately, on recorded sent messages).
pub const DEFAULT_MAX_CAPTURED_REQUESTS: usize = 100_000;
/// Default cap on the total size of captured request bodies.
pub const DEFAULT_MAX_CAPTURED_BYTES: usize = 256 * 1024 * 1024;

/// Where each provider is served; also the JSON line the binary prints once listening.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseUrls {
    /// `http://host:port`, the root (control API under `/_standin`).
    pub base_url: String,
    /// Value for `TWILIO_API_BASE_URL`.
    pub twilio: String,
    /// Value for `AFRICASTALKING_API_BASE_URL`.
    pub africastalking: String,
    /// Value for `BREVO_API_BASE_URL`.
    pub brevo: String,
    /// Value for `META_GRAPH_API_BASE_URL` (includes the Graph version).
    pub meta: String,
    /// Value for `TWILIO_CONTENT_API_BASE_URL` (Twilio's Content API, real host
    /// `https://content.twilio.com`): `{this}/v1/Content/{sid}`.
    #[serde(default)]
    pub twilio_content: String,
}

impl BaseUrls {
    fn new(addr: SocketAddr) -> Self {
        // A wildcard listen address is reachable through loopback.
        let host = if addr.ip().is_unspecified() {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        } else {
            addr
        };
        let base_url = format!("http://{host}");
        Self {
            twilio: format!("{base_url}{}", Provider::Twilio.prefix()),
            africastalking: format!("{base_url}{}", Provider::AfricasTalking.prefix()),
            brevo: format!("{base_url}{}", Provider::Brevo.prefix()),
            meta: format!("{base_url}{}/{META_GRAPH_VERSION}", Provider::Meta.prefix()),
            twilio_content: format!("{base_url}{TWILIO_CONTENT_PREFIX}"),
            base_url,
        }
    }

    /// The base URL Herald is configured with for `provider`.
    pub fn for_provider(&self, provider: Provider) -> &str {
        match provider {
            Provider::Twilio => &self.twilio,
            Provider::AfricasTalking => &self.africastalking,
            Provider::Brevo => &self.brevo,
            Provider::Meta => &self.meta,
        }
    }
}

/// State shared by every handler.
pub(crate) struct Shared {
    registry: RwLock<Registry>,
    pub(crate) journal: Journal,
    pub(crate) faults: FaultQueue,
    /// Twilio status callbacks: the outcome queue and the client that posts them.
    pub(crate) callbacks: Callbacks,
    /// Twilio Message resources created, by SID, as a fetch answers them (status and price
    /// follow the status callbacks).
    pub(crate) twilio_messages: twilio::MessageResources,
    /// WhatsApp customer service windows (Meta and Twilio).
    pub(crate) windows: windows::Windows,
    pub(crate) urls: OnceLock<BaseUrls>,
    pub(crate) started_at: OffsetDateTime,
    /// Flips to `true` on shutdown so held (delayed) requests and pending callbacks stop.
    pub(crate) stopping: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn registry_mut(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A JSON response with an explicit content type (providers differ in the charset suffix).
pub(crate) fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: &serde_json::Value,
) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.to_string(),
    )
        .into_response()
}

/// Entry point: `StandIns::builder()...build().spawn().await`.
#[derive(Debug)]
pub struct StandIns {
    accounts: Accounts,
    max_requests: usize,
    max_bytes: usize,
    twilio_default_outcome: DeliveryOutcome,
    status_callback_delay: Duration,
    remote_status_callbacks: bool,
}

/// Collects the credentials to accept, the journal bounds and the status-callback settings.
#[derive(Debug)]
pub struct StandInsBuilder {
    accounts: Accounts,
    max_requests: usize,
    max_bytes: usize,
    twilio_default_outcome: DeliveryOutcome,
    status_callback_delay: Duration,
    remote_status_callbacks: bool,
}

impl Default for StandInsBuilder {
    fn default() -> Self {
        Self {
            accounts: Accounts::default(),
            max_requests: DEFAULT_MAX_CAPTURED_REQUESTS,
            max_bytes: DEFAULT_MAX_CAPTURED_BYTES,
            twilio_default_outcome: DeliveryOutcome::Delivered,
            status_callback_delay: DEFAULT_STATUS_CALLBACK_DELAY,
            remote_status_callbacks: false,
        }
    }
}

impl StandInsBuilder {
    /// Accept Basic auth `account_sid:auth_token` for this Twilio account.
    pub fn twilio_account(
        mut self,
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
    ) -> Self {
        self.accounts = self.accounts.twilio_account(account_sid, auth_token);
        self
    }

    /// Accept Basic auth `key_sid:secret` as the Twilio account `account_sid`.
    pub fn twilio_api_key(
        mut self,
        account_sid: impl Into<String>,
        key_sid: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.accounts = self.accounts.twilio_api_key(account_sid, key_sid, secret);
        self
    }

    /// Accept `apiKey: api_key` with `username`.
    pub fn africastalking_account(
        mut self,
        username: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        self.accounts = self.accounts.africastalking_account(username, api_key);
        self
    }

    /// Accept `api-key: key`.
    pub fn brevo_key(mut self, key: impl Into<String>) -> Self {
        self.accounts = self.accounts.brevo_key(key);
        self
    }

    /// Accept `Authorization: Bearer token` for this WhatsApp phone number id.
    pub fn meta_phone_number(
        mut self,
        phone_number_id: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        self.accounts = self.accounts.meta_phone_number(phone_number_id, token);
        self
    }

    /// Accept `Authorization: Bearer token` for this WhatsApp phone number id, owned by the
    /// business account (WABA) `business_account_id`.
    pub fn meta_business_phone_number(
        mut self,
        business_account_id: impl Into<String>,
        phone_number_id: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        self.accounts =
            self.accounts
                .meta_business_phone_number(business_account_id, phone_number_id, token);
        self
    }

    /// Register this WhatsApp message template (same WABA, name and language: replaces).
    pub fn meta_template(mut self, template: MetaTemplate) -> Self {
        self.accounts = self.accounts.meta_template(template);
        self
    }

    /// Register this Twilio Content API resource (same sid: replaces).
    pub fn twilio_content(mut self, content: TwilioContent) -> Self {
        self.accounts = self.accounts.twilio_content(content);
        self
    }

    /// Accept everything in `accounts` as well.
    pub fn accounts(mut self, accounts: Accounts) -> Self {
        self.accounts.extend(accounts);
        self
    }

    /// Keep at most this many captured requests (oldest dropped first).
    pub fn max_captured_requests(mut self, max: usize) -> Self {
        self.max_requests = max;
        self
    }

    /// Keep at most this many bytes of captured request bodies (oldest dropped first).
    pub fn max_captured_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// How Twilio messages end when no outcome is queued (default
    /// [`DeliveryOutcome::Delivered`]; [`DeliveryOutcome::NoCallback`] turns callbacks off).
    pub fn twilio_default_outcome(mut self, outcome: DeliveryOutcome) -> Self {
        self.twilio_default_outcome = outcome;
        self
    }

    /// How long each status callback waits: after the create answer for the first, after the
    /// previous one for the next (default [`DEFAULT_STATUS_CALLBACK_DELAY`]).
    pub fn status_callback_delay(mut self, delay: Duration) -> Self {
        self.status_callback_delay = delay;
        self
    }

    /// Also call back to receivers off this machine (default: loopback hosts only, so a
    /// callback URL naming a public host never gets a request). Applies to the inbound-message
    /// webhooks of [`RunningStandIns::meta_inbound`] and [`RunningStandIns::twilio_inbound`] too.
    pub fn allow_remote_status_callbacks(mut self, allow: bool) -> Self {
        self.remote_status_callbacks = allow;
        self
    }

    pub fn build(self) -> StandIns {
        StandIns {
            accounts: self.accounts,
            max_requests: self.max_requests,
            max_bytes: self.max_bytes,
            twilio_default_outcome: self.twilio_default_outcome,
            status_callback_delay: self.status_callback_delay,
            remote_status_callbacks: self.remote_status_callbacks,
        }
    }
}

impl StandIns {
    pub fn builder() -> StandInsBuilder {
        StandInsBuilder::default()
    }

    /// Serves on `127.0.0.1` on a free port.
    pub async fn spawn(self) -> anyhow::Result<RunningStandIns> {
        self.spawn_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
    }

    /// Serves on `addr` (port 0 picks a free one).
    pub async fn spawn_on(self, addr: SocketAddr) -> anyhow::Result<RunningStandIns> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the provider stand-ins to {addr}"))?;
        let local_addr = listener.local_addr()?;
        let urls = BaseUrls::new(local_addr);

        let mut registry = Registry::default();
        registry.register(self.accounts);
        let (stopping, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            registry: RwLock::new(registry),
            journal: Journal::new(self.max_requests, self.max_bytes),
            faults: FaultQueue::default(),
            callbacks: Callbacks::new(
                self.twilio_default_outcome,
                self.status_callback_delay,
                self.remote_status_callbacks,
            )
            .context("building the status-callback HTTP client")?,
            twilio_messages: twilio::MessageResources::default(),
            windows: windows::Windows::default(),
            urls: OnceLock::new(),
            started_at: OffsetDateTime::now_utc(),
            stopping,
        });
        let _ = shared.urls.set(urls.clone());

        let app = router(shared.clone());
        let mut stop = shared.stopping.subscribe();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|&stopping| stopping).await;
                })
                .await
        });
        tracing::info!(%local_addr, "provider stand-ins listening");
        Ok(RunningStandIns {
            shared,
            local_addr,
            urls,
            task: Some(task),
        })
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let provider = |provider: Provider, routes: Router<Arc<Shared>>| {
        routes.layer(axum::middleware::from_fn_with_state(
            gate::Gate::new(shared.clone(), provider),
            gate::gate,
        ))
    };
    Router::new()
        .nest(
            &Provider::Twilio.prefix(),
            provider(Provider::Twilio, twilio::routes()),
        )
        // The Content API is Twilio's too: its requests are captured and faulted as Twilio's.
        .nest(
            TWILIO_CONTENT_PREFIX,
            provider(Provider::Twilio, twilio_content::routes()),
        )
        .nest(
            &Provider::AfricasTalking.prefix(),
            provider(Provider::AfricasTalking, africastalking::routes()),
        )
        .nest(
            &Provider::Brevo.prefix(),
            provider(Provider::Brevo, brevo::routes()),
        )
        .nest(
            &Provider::Meta.prefix(),
            provider(Provider::Meta, meta::routes()),
        )
        .nest("/_standin", control::routes())
        .with_state(shared)
}

/// A running stand-in server. Dropping it stops the server.
pub struct RunningStandIns {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    urls: BaseUrls,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for RunningStandIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningStandIns")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl RunningStandIns {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.urls.base_url
    }

    /// All base URLs at once.
    pub fn urls(&self) -> &BaseUrls {
        &self.urls
    }

    /// `{base}/twilio`: requests go to `{this}/2010-04-01/Accounts/...`.
    pub fn twilio_base_url(&self) -> &str {
        &self.urls.twilio
    }

    /// `{base}/africastalking`: requests go to `{this}/version1/...`.
    pub fn africastalking_base_url(&self) -> &str {
        &self.urls.africastalking
    }

    /// `{base}/brevo`: requests go to `{this}/v3/...`.
    pub fn brevo_base_url(&self) -> &str {
        &self.urls.brevo
    }

    /// `{base}/meta/v21.0`: requests go to `{this}/{phone_number_id}[/messages]`.
    pub fn meta_graph_base_url(&self) -> &str {
        &self.urls.meta
    }

    /// `{base}/twilio-content`, Twilio's Content API: requests go to `{this}/v1/Content/{sid}`.
    pub fn twilio_content_base_url(&self) -> &str {
        &self.urls.twilio_content
    }

    /// Registers more credentials, templates and contents while running (a template or content
    /// registered again replaces the earlier one: that is how a test pauses or approves one).
    pub fn register(&self, accounts: Accounts) {
        self.shared.registry_mut().register(accounts);
    }

    /// A customer writes to a WhatsApp Cloud number: opens (or extends) their 24-hour window
    /// and, with a webhook URL, POSTs Meta's signed `messages` webhook there. Fails for an
    /// unregistered number, a malformed `from` or a webhook URL that may not be called.
    pub async fn meta_inbound(&self, inbound: MetaInbound) -> anyhow::Result<InboundOutcome> {
        Ok(inbound::meta(&self.shared, inbound).await?)
    }

    /// A customer writes to a Twilio WhatsApp number: opens (or extends) their 24-hour window
    /// and, with a webhook URL, POSTs Twilio's signed incoming-message webhook there. Fails for
    /// an unregistered account, malformed addresses or a webhook URL that may not be called.
    pub async fn twilio_inbound(&self, inbound: TwilioInbound) -> anyhow::Result<InboundOutcome> {
        Ok(inbound::twilio(&self.shared, inbound).await?)
    }

    /// Every captured request, oldest first.
    pub fn requests(&self) -> Vec<CapturedRequest> {
        self.shared.journal.requests(None)
    }

    /// Captured requests to one provider, oldest first.
    pub fn requests_for(&self, provider: Provider) -> Vec<CapturedRequest> {
        self.shared.journal.requests(Some(provider))
    }

    /// Every message a provider accepted, oldest first.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.shared.journal.sent(None)
    }

    /// Messages one provider accepted, oldest first.
    pub fn sent_messages_for(&self, provider: Provider) -> Vec<SentMessage> {
        self.shared.journal.sent(Some(provider))
    }

    /// Waits until `provider` has accepted at least `count` messages; fails after `timeout`.
    pub async fn wait_for_sent(
        &self,
        provider: Provider,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<SentMessage>> {
        self.shared
            .journal
            .wait_for(count, timeout, |j| j.sent(Some(provider)))
            .await
            .map_err(|got| {
                anyhow::anyhow!(
                    "{provider} accepted {} message(s) within {timeout:?}, expected {count}",
                    got.len()
                )
            })
    }

    /// Waits until at least `count` requests reached `provider`; fails after `timeout`.
    pub async fn wait_for_requests(
        &self,
        provider: Provider,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<CapturedRequest>> {
        self.shared
            .journal
            .wait_for(count, timeout, |j| j.requests(Some(provider)))
            .await
            .map_err(|got| {
                anyhow::anyhow!(
                    "{provider} received {} request(s) within {timeout:?}, expected {count}",
                    got.len()
                )
            })
    }

    /// Every status callback attempted, oldest first.
    pub fn status_callbacks(&self) -> Vec<CallbackAttempt> {
        self.shared.journal.callbacks(None)
    }

    /// Waits until at least `count` status callbacks were attempted; fails after `timeout`.
    pub async fn wait_for_status_callbacks(
        &self,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<CallbackAttempt>> {
        self.shared
            .journal
            .wait_for(count, timeout, |j| j.callbacks(None))
            .await
            .map_err(|got| {
                anyhow::anyhow!(
                    "{} status callback(s) attempted within {timeout:?}, expected {count}",
                    got.len()
                )
            })
    }

    /// The next `count` messages Twilio accepts end with `outcome` (queued behind earlier ones;
    /// consumed one per accepted message, whether or not it names a `StatusCallback`).
    pub fn twilio_outcome_next(&self, count: usize, outcome: DeliveryOutcome) {
        self.shared.callbacks.push(count, outcome);
    }

    /// Outcomes still queued for Twilio messages, next first.
    pub fn pending_twilio_outcomes(&self) -> Vec<DeliveryOutcome> {
        self.shared.callbacks.queued()
    }

    /// How Twilio messages end when no outcome is queued.
    pub fn set_twilio_default_outcome(&self, outcome: DeliveryOutcome) {
        self.shared.callbacks.set_default(outcome);
    }

    /// Drops every queued Twilio outcome (the default stays).
    pub fn clear_twilio_outcomes(&self) {
        self.shared.callbacks.clear();
    }

    /// Forgets captured requests, sent messages and status callbacks.
    pub fn clear_journal(&self) {
        self.shared.journal.clear();
    }

    /// The next `count` requests to `provider` suffer `fault` (queued behind earlier faults).
    pub fn fail_next(&self, provider: Provider, count: usize, fault: Fault) {
        self.shared.faults.push(provider, count, fault);
    }

    /// Faults still queued for `provider`.
    pub fn pending_faults(&self, provider: Provider) -> usize {
        self.shared.faults.len(provider)
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Stops accepting connections, lets in-flight requests finish (held ones are released at
    /// once), stops pending status callbacks and waits up to five seconds for the server to end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shared.stopping.send_replace(true);
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let abort = task.abort_handle();
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(joined) => Ok(joined.context("provider stand-ins task")??),
            Err(_) => {
                abort.abort();
                Ok(())
            }
        }
    }
}

impl Drop for RunningStandIns {
    fn drop(&mut self) {
        self.shared.stopping.send_replace(true);
    }
}

#[cfg(test)]
mod tests;
