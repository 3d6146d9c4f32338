//! Handler and domain tests over the in-memory stores: requests from `events/` served by the
//! handlers as API Gateway would, property tests of the domain, provider ports played in-process.
//! One test binary (linking one is the slow part of a debug build); each module is one behaviour.

mod support;

mod api_handlers;
mod batch_send;
mod compliance_blocks;
mod compliance_reports;
mod data_subject;
mod dispatch_circuit;
mod hostile_input;
mod item_limits;
mod message_list;
mod preferences;
mod provider_send;
mod receipts;
mod record_too_large;
mod resolution_properties;
mod status_machine;
mod status_webhooks;
mod template_review;
mod test_send;
mod typed_variables;
mod unsubscribe;
mod whatsapp_templates;
