//! The `audit-anchor` Lambda: on its schedule, signs where every audit chain of every scope
//! stands ([`herald_shared::audit_anchors::scheduled`]).

use herald_shared::audit_anchors::{KmsAnchorSigner, scheduled};
use herald_shared::store::dynamodb::{DynamoDb, TableNames};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_shared::observability::init();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoDb::new(aws_sdk_dynamodb::Client::new(&aws), TableNames::from_env()?);
    let key_id = std::env::var("AUDIT_ANCHOR_KEY_ID")?;
    let signer = KmsAnchorSigner::new(aws_sdk_kms::Client::new(&aws), key_id);
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        scheduled(&store, &signer).await.map_err(Error::from)
    }))
    .await
}
