//! Channels and template categories. The ten categories are the event wizard's sequence; a
//! category's class decides which consent rules apply to it (marketing can be refused,
//! transactional messages still go out).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
    InApp,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::Sms,
        Channel::Whatsapp,
        Channel::InApp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::InApp => "in_app",
        }
    }

    /// Email is the only channel with a subject line.
    pub fn has_subject(self) -> bool {
        self == Channel::Email
    }

    /// In-app messages are delivered by Herald itself, so they need no third-party provider.
    pub fn needs_provider(self) -> bool {
        self != Channel::InApp
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(UnknownName { what: "channel" })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}")]
pub struct UnknownName {
    pub what: &'static str,
}

/// Whether recipients may refuse a category (marketing) or not (transactional, regulatory).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CategoryClass {
    Transactional,
    Marketing,
}

/// The event wizard's ten message categories, in the order the wizard walks them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    SaveTheDate,
    Invitation,
    RsvpConfirmation,
    RsvpReminder,
    EventReminder,
    EventUpdate,
    TicketDelivery,
    CheckIn,
    ThankYou,
    FeedbackRequest,
}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::SaveTheDate,
        Category::Invitation,
        Category::RsvpConfirmation,
        Category::RsvpReminder,
        Category::EventReminder,
        Category::EventUpdate,
        Category::TicketDelivery,
        Category::CheckIn,
        Category::ThankYou,
        Category::FeedbackRequest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::SaveTheDate => "save_the_date",
            Category::Invitation => "invitation",
            Category::RsvpConfirmation => "rsvp_confirmation",
            Category::RsvpReminder => "rsvp_reminder",
            Category::EventReminder => "event_reminder",
            Category::EventUpdate => "event_update",
            Category::TicketDelivery => "ticket_delivery",
            Category::CheckIn => "check_in",
            Category::ThankYou => "thank_you",
            Category::FeedbackRequest => "feedback_request",
        }
    }

    pub fn class(self) -> CategoryClass {
        match self {
            Category::SaveTheDate
            | Category::Invitation
            | Category::ThankYou
            | Category::FeedbackRequest => CategoryClass::Marketing,
            _ => CategoryClass::Transactional,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(UnknownName { what: "category" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::json!(c.as_str()))
            );
        }
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::json!(c.as_str()))
            );
        }
    }
}
