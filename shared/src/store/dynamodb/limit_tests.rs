//! The adapters against DynamoDB's limits, over a client that answers every request with an
//! empty success and counts them: an item one byte over the limit is refused before any request
//! leaves, one at the limit is sent. And no write in these modules bypasses the checks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use time::OffsetDateTime;

use super::item_size::{ITEM_LIMIT, TRANSACTION_LIMIT, item_size};
use super::{DynamoDb, Item, TableNames};
use crate::domain::audit::AuditEntry;
use crate::domain::brand::Brand;
use crate::domain::identity::Role;
use crate::domain::resolution::{EventSettings, TriggerRoute};
use crate::domain::template::{TemplateContent, TemplateVersion};
use crate::domain::{Category, Channel, EventId, TenantId};
use crate::store::{
    IdempotencyStore, Owner, Revisioned, StoreError, StoreResult, StoredResponse, TemplateStore,
};

/// Answers `{}` (an empty success) to every request, counting them.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<AtomicUsize>);

impl Recorder {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

impl HttpConnector for Recorder {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        self.0.fetch_add(1, Ordering::SeqCst);
        let response = HttpResponse::new(200u16.try_into().unwrap_or_else(|_| unreachable!()), {
            SdkBody::from("{}")
        });
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Recorder {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

fn tables() -> TableNames {
    let name = |n: &str| n.to_owned();
    TableNames {
        providers: name("providers"),
        templates: name("templates"),
        snapshots: name("snapshots"),
        audit: name("audit"),
        idempotency: name("idempotency"),
        messages: name("messages"),
        recipients: name("recipients"),
        webhook_endpoints: name("webhook-endpoints"),
    }
}

fn store() -> (DynamoDb, Recorder) {
    let recorder = Recorder::default();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("id", "secret", None, None, "tests"))
        .endpoint_url("http://127.0.0.1:9")
        .http_client(recorder.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    (DynamoDb::new(client, tables()), recorder)
}

fn audit() -> AuditEntry {
    AuditEntry {
        id: ulid::Ulid::new().to_string(),
        actor: "user-1".into(),
        actor_role: Role::TenantAdmin,
        scope: "acme".into(),
        action: "template.updated".into(),
        target: "tenant/template/invitation/email".into(),
        before: None,
        after: None,
        at: fixed_time(),
        request_id: "req-1".into(),
    }
}

/// A time whose written form has a fixed length: `now` carries a varying number of fractional
/// digits, which moves the boundary a byte between the search and the check.
fn fixed_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_796_630_400).unwrap_or_else(|_| unreachable!())
}

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap_or_else(|_| unreachable!())
}

/// Finds the largest padding `write` takes, then checks the boundary: one byte more is
/// `TooLarge` at exactly the limit plus one, naming `field`, with no request sent; at the
/// boundary the write goes out.
async fn boundary<F, Fut>(recorder: &Recorder, field: &str, write: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    let (mut fits, mut too_large) = (0usize, ITEM_LIMIT + 1);
    assert!(
        write(fits).await.is_ok(),
        "{field}: a small write goes through"
    );
    assert!(
        matches!(write(too_large).await, Err(StoreError::TooLarge { .. })),
        "{field}: a write past the limit is refused"
    );
    while too_large - fits > 1 {
        let middle = (fits + too_large) / 2;
        match write(middle).await {
            Ok(()) => fits = middle,
            Err(StoreError::TooLarge { .. }) => too_large = middle,
            Err(e) => panic!("{field}: {e}"),
        }
    }
    recorder.take();
    match write(too_large).await {
        Err(StoreError::TooLarge { what, size, limit }) => {
            assert_eq!(what, field);
            assert_eq!(size, limit + 1, "{field}: refused one byte over the limit");
        }
        other => panic!("{field}: {other:?}"),
    }
    assert_eq!(recorder.take(), 0, "{field}: nothing was sent");
    assert!(write(fits).await.is_ok());
    assert!(
        recorder.take() > 0,
        "{field}: the write at the limit was sent"
    );
}

fn template(body: String) -> TemplateVersion {
    TemplateVersion {
        category: Category::Invitation,
        channel: Channel::Email,
        version: 1,
        content: TemplateContent {
            subject: Some("You are invited".into()),
            body,
            variables: Vec::new(),
            brand_assets: Default::default(),
            design_settings: Default::default(),
            whatsapp: None,
        },
        created_by: "user-1".into(),
        created_at: fixed_time(),
        state: crate::domain::template::TemplateState::Published,
        review: None,
    }
}

#[tokio::test]
async fn a_template_over_the_item_limit_is_refused_before_sending() {
    let (store, recorder) = store();
    let owner = Owner::Tenant(tenant());
    boundary(&recorder, "template.body", |n| {
        let (store, owner) = (&store, &owner);
        async move {
            store
                .put_template(owner, &template("x".repeat(n)), &audit())
                .await
        }
    })
    .await;
}

#[tokio::test]
async fn a_brand_over_the_item_limit_is_refused_before_sending() {
    let (store, recorder) = store();
    let owner = Owner::Tenant(tenant());
    boundary(&recorder, "brand.footer_text", |n| {
        let (store, owner) = (&store, &owner);
        async move {
            let brand = Brand {
                display_name: Some("Acme".into()),
                footer_text: Some("f".repeat(n)),
                ..Brand::default()
            };
            let brand = Revisioned {
                value: brand,
                revision: 1,
            };
            store.put_brand(owner, &brand, &audit()).await
        }
    })
    .await;
}

#[tokio::test]
async fn event_settings_over_the_item_limit_are_refused_before_sending() {
    let (store, recorder) = store();
    let event = EventId::parse("gala").unwrap_or_else(|_| unreachable!());
    // A trigger's name is a map key: named by its map, never by itself.
    boundary(&recorder, "event_settings.triggers", |n| {
        let (store, event) = (&store, &event);
        async move {
            let route = TriggerRoute {
                category: Category::Invitation,
                channels: [Channel::Email].into(),
            };
            let settings = EventSettings {
                channels: [Channel::Email].into(),
                categories: [Category::Invitation].into(),
                triggers: [(format!("t{}", "t".repeat(n)), route)].into(),
                ..EventSettings::default()
            };
            let settings = Revisioned {
                value: settings,
                revision: 1,
            };
            store
                .put_settings(&tenant(), event, &settings, &audit())
                .await
        }
    })
    .await;
}

#[tokio::test]
async fn a_stored_response_over_the_item_limit_is_refused_before_sending() {
    let (store, recorder) = store();
    boundary(&recorder, "stored_response.body", |n| {
        let store = &store;
        async move {
            let response = StoredResponse {
                status: 202,
                body: "b".repeat(n),
            };
            store
                .finish("acme#send#key-1", "sha256:abc", &response)
                .await
        }
    })
    .await;
}

/// Every table, through the one check every write takes: the limit less the table's room.
#[test]
fn every_table_is_held_to_the_item_limit_less_its_room() {
    let (store, _) = store();
    let t = tables();
    for (table, sort, kind) in [
        (&t.providers, "PROVIDER#prv_1", "provider"),
        (&t.templates, "CUR#TPL#invitation#email", "template"),
        (&t.templates, "CUR#BRAND", "brand"),
        (&t.snapshots, "V#00000001", "snapshot"),
        (&t.audit, "E#000000000001", "audit_entry"),
        (&t.idempotency, "-", "stored_response"),
        (&t.messages, "-", "message"),
        (&t.recipients, "CONSENT#LOG#01", "consent"),
        (&t.recipients, "PREFERENCES", "preferences"),
        (&t.webhook_endpoints, "ep_1", "webhook_endpoint"),
    ] {
        let limit = ITEM_LIMIT - store.room_of(table).total();
        let item = |pad: usize| -> Item {
            let mut item = HashMap::from([
                ("pk".to_owned(), AttributeValue::S("T#acme".into())),
                ("sk".to_owned(), AttributeValue::S(sort.into())),
                ("pad".to_owned(), AttributeValue::S(String::new())),
            ]);
            let base = item_size(&item);
            item.insert("pad".into(), AttributeValue::S("p".repeat(pad - base)));
            item
        };
        assert_eq!(store.check_put(table, &item(limit)).ok(), Some(limit));
        match store.check_put(table, &item(limit + 1)) {
            Err(StoreError::TooLarge { what, size, .. }) => {
                assert_eq!(size, limit + 1);
                let expected = if kind == "snapshot" {
                    kind.to_owned()
                } else {
                    format!("{kind}.pad")
                };
                assert_eq!(what, expected);
            }
            other => panic!("{table}: {other:?}"),
        }
    }
}

#[test]
fn updates_are_held_to_their_tables_room() {
    let (store, _) = store();
    let t = tables();
    let key = HashMap::from([("pk".to_owned(), AttributeValue::S("msg_1".into()))]);
    let names = HashMap::from([("#record".to_owned(), "record".to_owned())]);
    let reason = |n: usize| {
        HashMap::from([
            (":reason".to_owned(), AttributeValue::S("r".repeat(n))),
            (":one".to_owned(), AttributeValue::N("1".into())),
        ])
    };
    let expression = "SET #record.status_reason = :reason, status_reason = :reason";
    assert!(
        store
            .check_update(
                &t.messages,
                &key,
                expression,
                Some(&names),
                Some(&reason(800))
            )
            .is_ok()
    );
    assert!(matches!(
        store.check_update(&t.messages, &key, expression, Some(&names), Some(&reason(5000))),
        Err(StoreError::TooLarge { what, .. }) if what == "message.record.status_reason"
    ));
    // ADD grows an item by an amount nothing bounds here.
    assert!(matches!(
        store.check_update(&t.messages, &key, "ADD n :one", None, Some(&reason(1))),
        Err(StoreError::Unavailable(_))
    ));
}

#[test]
fn transactions_are_held_to_four_megabytes_and_a_hundred_actions() {
    let (store, _) = store();
    let put = |i: usize, pad: usize| {
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("msg_{i}"))),
            ("pad".to_owned(), AttributeValue::S("p".repeat(pad))),
        ]);
        let put = Put::builder()
            .table_name("providers")
            .set_item(Some(item))
            .build()
            .unwrap_or_else(|_| unreachable!());
        TransactWriteItem::builder().put(put).build()
    };
    let under: Vec<_> = (0..10).map(|i| put(i, 400_000)).collect();
    assert!(store.check_transaction(&under).is_ok());
    let over: Vec<_> = (0..11).map(|i| put(i, 400_000)).collect();
    assert!(matches!(
        store.check_transaction(&over),
        Err(StoreError::TooLarge { what, size, limit })
            if what == "transaction" && size > limit && limit == TRANSACTION_LIMIT
    ));
    let many: Vec<_> = (0..101).map(|i| put(i, 10)).collect();
    assert!(matches!(
        store.check_transaction(&many),
        Err(StoreError::Unavailable(_))
    ));
}

/// Every write request these adapters build goes through a check: a PutItem or UpdateItem
/// outside a transaction is checked by its caller, every transaction in `transact_detailed`.
/// A new write path without its check fails here.
#[test]
fn no_write_bypasses_the_checks() {
    let sources = [
        include_str!("mod.rs"),
        include_str!("idempotency.rs"),
        include_str!("messages.rs"),
        include_str!("providers.rs"),
        include_str!("recipients.rs"),
        include_str!("recipients/consents.rs"),
        include_str!("snapshots.rs"),
        include_str!("templates.rs"),
        include_str!("tenant_settings.rs"),
        include_str!("webhook_endpoints.rs"),
    ];
    let count = |needle: &str| -> usize { sources.iter().map(|s| s.matches(needle).count()).sum() };
    assert_eq!(
        count(".put_item()"),
        count("self.check_put_item(&request)?"),
        "every PutItem is checked"
    );
    // One UpdateItem builder (`endpoint_update`) serves two checked requests.
    assert_eq!(
        count(".update_item()") + 1,
        count("self.check_update_item(&request)?"),
        "every UpdateItem is checked"
    );
    assert_eq!(count(".transact_write_items()"), 1, "one way to transact");
    assert_eq!(count("self.check_transaction(&items)"), 1);
    assert_eq!(
        count(".batch_write_item()"),
        1,
        "restoring the audit log only"
    );
    assert_eq!(count("self.check_put(&self.tables.audit, item)?"), 1);
}
