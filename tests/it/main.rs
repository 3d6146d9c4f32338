//! Integration tests: Herald's API handlers and DynamoDB/KMS adapters against the local AWS
//! emulator provisioned from `infra/template.yaml`, with provider stand-ins on 127.0.0.1 and a
//! real local SMTP server. Needs the project toolchain (`scripts/toolchain.sh`).

mod harness;

mod data_subject;
mod isolation;
mod message_list;
mod preferences;
mod provider_checks;
mod receipts;
mod redaction;
mod reports;
mod resolution_requests;
mod sending;
mod status_webhooks;
mod template_review;
mod test_send;
mod unsubscribe;
mod whatsapp;
mod wizard_flow;
