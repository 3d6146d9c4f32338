//! What a message costs before it is sent: money as integer micros of a currency, and a rate
//! table per provider kind, channel and destination country from which dispatch estimates the
//! cost of each message (receipts correct it later).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::catalogue::Channel;
use super::provider::ProviderKind;

/// Micros in one unit of a currency.
pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// An ISO 4217 currency code: three upper-case ASCII letters.
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
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");
    pub const KES: Currency = Currency(*b"KES");
    pub const ZMW: Currency = Currency(*b"ZMW");
    pub const UGX: Currency = Currency(*b"UGX");
    pub const TZS: Currency = Currency(*b"TZS");
    pub const NGN: Currency = Currency(*b"NGN");

    pub fn parse(code: &str) -> Result<Self, String> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(format!(
                "{code:?} is not a currency code (three upper-case letters, ISO 4217)"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from three ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("cannot add {0} to {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount out of range")]
    Overflow,
}

/// An amount of money in millionths of its currency's unit. Integer, so sums are exact: list
/// prices go down to fractions of a cent (SES is 0.0001 USD an email).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Money {
    pub amount_micros: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(amount_micros: i64, currency: Currency) -> Self {
        Self {
            amount_micros,
            currency,
        }
    }

    pub const fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// The sum, if both are in the same currency and it fits.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(other.currency, self.currency));
        }
        self.amount_micros
            .checked_add(other.amount_micros)
            .map(|amount| Money::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// The amount `times` over, e.g. a per-segment price times the segments of a message.
    pub fn checked_mul(self, times: u32) -> Result<Money, MoneyError> {
        self.amount_micros
            .checked_mul(i64::from(times))
            .map(|amount| Money::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }
}

/// `0.0079 USD`: at least two decimals, more only when the amount has them.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount_micros < 0 { "-" } else { "" };
        let abs = self.amount_micros.unsigned_abs();
        let units = abs / MICROS_PER_UNIT.unsigned_abs();
        let micros = format!("{:06}", abs % MICROS_PER_UNIT.unsigned_abs());
        let decimals = micros.trim_end_matches('0');
        let decimals = if decimals.len() < 2 {
            &micros[..2]
        } else {
            decimals
        };
        write!(f, "{sign}{units}.{decimals} {}", self.currency)
    }
}

/// One price: what `provider` charges on `channel` for each unit sent to numbers under
/// `destination`. The unit follows from the channel: an SMS segment, a WhatsApp message, an email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub provider: ProviderKind,
    pub channel: Channel,
    /// A country calling code or longer prefix, `+` and 1-6 digits (`+260`, `+1876`); absent for
    /// the price of every destination without a more specific rate (and always for email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    pub price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateTableError {
    #[error("rates[{index}]: {message}")]
    Invalid { index: usize, message: String },
}

/// Prices by provider kind, channel and destination prefix; the longest matching prefix wins and
/// a rate without a destination is the default. Deserialises from `{"rates": [Rate, ...]}`,
/// refusing malformed prefixes, negative prices and duplicate keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "RateList", into = "RateList")]
pub struct RateTable {
    /// Per provider and channel: prefixes (digits only) longest first, then the default.
    index: BTreeMap<(ProviderKind, Channel), Vec<(String, Money)>>,
    rates: Vec<Rate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RateList {
    rates: Vec<Rate>,
}

impl TryFrom<RateList> for RateTable {
    type Error = RateTableError;
    fn try_from(list: RateList) -> Result<Self, Self::Error> {
        RateTable::new(list.rates)
    }
}

impl From<RateTable> for RateList {
    fn from(table: RateTable) -> Self {
        RateList { rates: table.rates }
    }
}

impl RateTable {
    pub fn new(rates: Vec<Rate>) -> Result<Self, RateTableError> {
        let mut index: BTreeMap<(ProviderKind, Channel), Vec<(String, Money)>> = BTreeMap::new();
        for (i, rate) in rates.iter().enumerate() {
            let invalid = |message: String| RateTableError::Invalid { index: i, message };
            if !rate.provider.channels().contains(&rate.channel) {
                return Err(invalid(format!(
                    "{} does not send {}",
                    rate.provider.as_str(),
                    rate.channel
                )));
            }
            if rate.price.amount_micros < 0 {
                return Err(invalid("prices cannot be negative".into()));
            }
            let prefix = match (&rate.destination, rate.channel) {
                (None, _) => String::new(),
                (Some(_), Channel::Email | Channel::InApp) => {
                    return Err(invalid(format!(
                        "{} rates have no destination",
                        rate.channel
                    )));
                }
                (Some(d), _) => {
                    let digits = d.strip_prefix('+').unwrap_or("");
                    if digits.is_empty()
                        || digits.len() > 6
                        || !digits.chars().all(|c| c.is_ascii_digit())
                    {
                        return Err(invalid(format!(
                            "destination {d:?} must be + and a 1-6 digit calling code prefix"
                        )));
                    }
                    digits.to_owned()
                }
            };
            let entries = index.entry((rate.provider, rate.channel)).or_default();
            if entries.iter().any(|(p, _)| *p == prefix) {
                return Err(invalid(format!(
                    "a second {} {} rate for {}",
                    rate.provider.as_str(),
                    rate.channel,
                    rate.destination
                        .as_deref()
                        .unwrap_or("the default destination")
                )));
            }
            entries.push((prefix, rate.price));
        }
        for entries in index.values_mut() {
            // Longest first, so the first match is the most specific; the default ("") is last.
            entries.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        }
        Ok(Self { index, rates })
    }

    pub fn rates(&self) -> &[Rate] {
        &self.rates
    }

    /// The price of one unit (SMS segment, WhatsApp message, email) from `kind` on `channel` to
    /// `to` (an E.164 number, optionally `whatsapp:`-prefixed; an email address for email).
    pub fn price(&self, kind: ProviderKind, channel: Channel, to: &str) -> Option<Money> {
        let entries = self.index.get(&(kind, channel))?;
        let digits = match channel {
            Channel::Sms | Channel::Whatsapp => {
                let number = to.strip_prefix("whatsapp:").unwrap_or(to);
                number.strip_prefix('+').unwrap_or(number)
            }
            Channel::Email | Channel::InApp => "",
        };
        entries
            .iter()
            .find(|(prefix, _)| digits.starts_with(prefix.as_str()))
            .map(|(_, price)| *price)
    }

    /// The estimated cost of one message: the unit price times `segments` for SMS (from
    /// [`crate::domain::sms::segments`]), the unit price for WhatsApp and email (`segments` is
    /// ignored there). `None` when the table has no price for it (or, absurdly, it overflows).
    pub fn estimate(
        &self,
        kind: ProviderKind,
        channel: Channel,
        to: &str,
        segments: u32,
    ) -> Option<Money> {
        let price = self.price(kind, channel, to)?;
        match channel {
            Channel::Sms => price.checked_mul(segments).ok(),
            _ => Some(price),
        }
    }

    /// Herald's built-in list prices.
    ///
    /// **Placeholders**: plausible public list prices at the time of writing, for estimates
    /// until the operator configures the rates of the accounts actually used (negotiated prices,
    /// carrier surcharges and exchange rates differ). Receipts that report a cost correct the
    /// estimate per message. WhatsApp rates are Meta's per-message prices for *utility*
    /// templates (Herald's transactional categories); marketing templates cost several times
    /// more, and service replies inside the customer-care window are free.
    pub fn default_rates() -> Self {
        use Channel::{Email, Sms, Whatsapp};
        use Currency as C;
        use ProviderKind::{AfricasTalking, Brevo, MetaWhatsapp, Ses, Smtp, Sns, Twilio};
        let rate = |provider, channel, destination: Option<&str>, micros, currency| Rate {
            provider,
            channel,
            destination: destination.map(str::to_owned),
            price: Money::new(micros, currency),
        };
        let rates = vec![
            // Twilio Programmable SMS, USD per segment.
            rate(Twilio, Sms, Some("+1"), 7_900, C::USD),
            rate(Twilio, Sms, Some("+44"), 52_400, C::USD),
            rate(Twilio, Sms, Some("+254"), 100_000, C::USD),
            rate(Twilio, Sms, Some("+260"), 200_000, C::USD),
            rate(Twilio, Sms, Some("+27"), 120_000, C::USD),
            rate(Twilio, Sms, Some("+234"), 150_000, C::USD),
            rate(Twilio, Sms, None, 150_000, C::USD),
            // Africa's Talking bulk SMS, local currency per segment; no default: it serves
            // African networks only, so elsewhere there is no estimate.
            rate(AfricasTalking, Sms, Some("+254"), 800_000, C::KES),
            rate(AfricasTalking, Sms, Some("+260"), 350_000, C::ZMW),
            rate(AfricasTalking, Sms, Some("+256"), 25_000_000, C::UGX),
            rate(AfricasTalking, Sms, Some("+255"), 22_000_000, C::TZS),
            rate(AfricasTalking, Sms, Some("+234"), 4_000_000, C::NGN),
            // Amazon SNS SMS (transactional), USD per segment.
            rate(Sns, Sms, Some("+1"), 5_810, C::USD),
            rate(Sns, Sms, Some("+254"), 110_000, C::USD),
            rate(Sns, Sms, Some("+260"), 210_000, C::USD),
            rate(Sns, Sms, None, 100_000, C::USD),
            // Meta WhatsApp Cloud, utility template, USD per message.
            rate(MetaWhatsapp, Whatsapp, Some("+1"), 4_000, C::USD),
            rate(MetaWhatsapp, Whatsapp, Some("+27"), 7_600, C::USD),
            rate(MetaWhatsapp, Whatsapp, Some("+234"), 6_700, C::USD),
            rate(MetaWhatsapp, Whatsapp, None, 4_000, C::USD),
            // Twilio WhatsApp: Meta's price plus Twilio's 0.005 USD per message.
            rate(Twilio, Whatsapp, Some("+1"), 9_000, C::USD),
            rate(Twilio, Whatsapp, Some("+27"), 12_600, C::USD),
            rate(Twilio, Whatsapp, Some("+234"), 11_700, C::USD),
            rate(Twilio, Whatsapp, None, 9_000, C::USD),
            // Email: SES is 0.10 USD per 1,000; Brevo is paid by plan and SMTP by the tenant's
            // own server, so a message adds nothing.
            rate(Ses, Email, None, 100, C::USD),
            rate(Brevo, Email, None, 0, C::USD),
            rate(Smtp, Email, None, 0, C::USD),
        ];
        // The literal table above is valid; a mistake in it shows in the tests, not at run time.
        Self::new(rates).unwrap_or_else(|_| Self {
            index: BTreeMap::new(),
            rates: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn usd(micros: i64) -> Money {
        Money::new(micros, Currency::USD)
    }

    #[test]
    fn money_adds_within_a_currency_only() {
        assert_eq!(usd(7_900).checked_add(usd(100)), Ok(usd(8_000)));
        assert_eq!(
            usd(1).checked_add(Money::new(1, Currency::KES)),
            Err(MoneyError::CurrencyMismatch(Currency::KES, Currency::USD))
        );
        assert_eq!(usd(i64::MAX).checked_add(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(7_900).checked_mul(3), Ok(usd(23_700)));
        assert_eq!(usd(7_900).checked_mul(0), Ok(usd(0)));
        assert_eq!(usd(i64::MAX / 2).checked_mul(3), Err(MoneyError::Overflow));
    }

    #[test]
    fn money_displays_as_a_decimal() {
        assert_eq!(usd(7_900).to_string(), "0.0079 USD");
        assert_eq!(usd(100).to_string(), "0.0001 USD");
        assert_eq!(usd(0).to_string(), "0.00 USD");
        assert_eq!(usd(1_500_000).to_string(), "1.50 USD");
        assert_eq!(usd(-250_000).to_string(), "-0.25 USD");
        assert_eq!(Money::new(800_000, Currency::KES).to_string(), "0.80 KES");
        assert_eq!(usd(i64::MIN).to_string(), "-9223372036854.775808 USD");
    }

    #[test]
    fn currencies_are_iso_codes() {
        assert_eq!(Currency::parse("ZMW"), Ok(Currency::ZMW));
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("€€€").is_err());
        assert_eq!(
            serde_json::to_value(usd(5)).ok(),
            Some(serde_json::json!({"amount_micros": 5, "currency": "USD"}))
        );
    }

    #[test]
    fn sms_costs_per_segment_by_the_longest_prefix() {
        let table = RateTable::default_rates();
        assert_eq!(table.rates().len(), 27, "the default table is valid");
        let est = |kind, to, segments| table.estimate(kind, Channel::Sms, to, segments);
        assert_eq!(
            est(ProviderKind::Twilio, "+14155552671", 1),
            Some(usd(7_900))
        );
        assert_eq!(
            est(ProviderKind::Twilio, "+260971234567", 2),
            Some(usd(400_000))
        );
        // No prefix matches: Twilio's default.
        assert_eq!(
            est(ProviderKind::Twilio, "+33612345678", 1),
            Some(usd(150_000))
        );
        assert_eq!(
            est(ProviderKind::AfricasTalking, "+254712345678", 3),
            Some(Money::new(2_400_000, Currency::KES))
        );
        // Africa's Talking has no default: no estimate outside its markets.
        assert_eq!(est(ProviderKind::AfricasTalking, "+14155552671", 1), None);
        // A provider on a channel it does not serve has no price.
        assert_eq!(
            table.estimate(ProviderKind::Ses, Channel::Sms, "+14155552671", 1),
            None
        );
    }

    #[test]
    fn longer_prefixes_win() {
        let table = RateTable::new(vec![
            Rate {
                provider: ProviderKind::Sns,
                channel: Channel::Sms,
                destination: Some("+1".into()),
                price: usd(5_000),
            },
            Rate {
                provider: ProviderKind::Sns,
                channel: Channel::Sms,
                destination: Some("+1876".into()),
                price: usd(90_000),
            },
            Rate {
                provider: ProviderKind::Sns,
                channel: Channel::Sms,
                destination: None,
                price: usd(50_000),
            },
        ]);
        let Ok(table) = table else {
            panic!("valid table: {table:?}");
        };
        let est = |to| table.estimate(ProviderKind::Sns, Channel::Sms, to, 1);
        assert_eq!(est("+18765550123"), Some(usd(90_000)));
        assert_eq!(est("+12025550123"), Some(usd(5_000)));
        assert_eq!(est("+447700900123"), Some(usd(50_000)));
    }

    #[test]
    fn whatsapp_and_email_cost_per_message() {
        let table = RateTable::default_rates();
        let wa = |kind, to| table.estimate(kind, Channel::Whatsapp, to, 4);
        assert_eq!(
            wa(ProviderKind::MetaWhatsapp, "+27821234567"),
            Some(usd(7_600))
        );
        assert_eq!(
            wa(ProviderKind::Twilio, "whatsapp:+14155552671"),
            Some(usd(9_000))
        );
        let email = |kind| table.estimate(kind, Channel::Email, "ada@acme.example", 1);
        assert_eq!(email(ProviderKind::Ses), Some(usd(100)));
        assert_eq!(email(ProviderKind::Brevo), Some(usd(0)));
        // 1,000 SES emails are 0.10 USD.
        let thousand = (0..1000).try_fold(Money::zero(Currency::USD), |sum, _| {
            sum.checked_add(email(ProviderKind::Ses).unwrap_or(usd(0)))
        });
        assert_eq!(thousand.map(|m| m.to_string()), Ok("0.10 USD".to_owned()));
    }

    #[test]
    fn rate_tables_come_from_configuration() {
        let json = serde_json::json!({"rates": [
            {"provider": "twilio", "channel": "sms", "destination": "+260",
             "price": {"amount_micros": 180000, "currency": "USD"}},
            {"provider": "ses", "channel": "email",
             "price": {"amount_micros": 100, "currency": "USD"}}
        ]});
        let table: Result<RateTable, _> = serde_json::from_value(json.clone());
        let Ok(table) = table else {
            panic!("parses: {table:?}");
        };
        assert_eq!(
            table.estimate(ProviderKind::Twilio, Channel::Sms, "+260971234567", 1),
            Some(usd(180_000))
        );
        assert_eq!(serde_json::to_value(&table).ok(), Some(json));

        let refused = |rate: serde_json::Value| {
            serde_json::from_value::<RateTable>(serde_json::json!({ "rates": [rate] }))
                .map_err(|e| e.to_string())
                .err()
                .unwrap_or_default()
        };
        let price = serde_json::json!({"amount_micros": 1, "currency": "USD"});
        assert!(
            refused(serde_json::json!({"provider": "twilio", "channel": "sms", "destination": "260", "price": price}))
                .contains("calling code")
        );
        assert!(
            refused(serde_json::json!({"provider": "ses", "channel": "email", "destination": "+1", "price": price}))
                .contains("no destination")
        );
        assert!(
            refused(serde_json::json!({"provider": "ses", "channel": "sms", "price": price}))
                .contains("does not send")
        );
        assert!(
            refused(serde_json::json!({"provider": "sns", "channel": "sms",
                "price": {"amount_micros": -1, "currency": "USD"}}))
            .contains("negative")
        );
        let twice = serde_json::from_value::<RateTable>(serde_json::json!({"rates": [
            {"provider": "sns", "channel": "sms", "price": price},
            {"provider": "sns", "channel": "sms", "price": price}
        ]}));
        assert!(twice.is_err());
    }
}
