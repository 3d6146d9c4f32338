//! Which Herald claims (`herald:tenant`, `herald:role`) an identity token may carry: a person's
//! from the attributes an administrator set on them, a tenant system's from the app client it
//! authenticated as. Anything less than a known role, and a tenant where one is needed, refuses
//! the token rather than issue one Herald would turn away.

use std::collections::HashMap;

use super::identity::Role;
use super::ids::TenantId;

/// The user attribute holding a person's tenant (Cognito prefixes custom attributes).
pub const TENANT_ATTRIBUTE: &str = "custom:tenant";
/// The user attribute holding a person's role.
pub const ROLE_ATTRIBUTE: &str = "custom:role";

/// The Herald claims of one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeraldClaims {
    pub role: Role,
    /// Platform admins act for the platform and carry none; every other role carries one.
    pub tenant: Option<TenantId>,
}

/// Why no token is issued. The messages name attributes and rules, never a value: a person's
/// attributes are personal data, and Cognito shows the message to whoever asked for the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the user has no custom:role attribute; an administrator must set it")]
    NoRole,
    #[error(
        "the user's custom:role attribute is not a Herald role (platform_admin, tenant_admin, event_manager)"
    )]
    UnknownRole,
    #[error(
        "the user has no custom:tenant attribute, which their role needs; an administrator must set it"
    )]
    NoTenant,
    #[error(
        "the user's custom:tenant attribute is not a tenant id (lower-case letters, digits, - and _)"
    )]
    InvalidTenant,
    #[error("a platform admin acts for the platform and must not have a custom:tenant attribute")]
    PlatformAdminWithTenant,
    #[error("this app client is not a registered tenant system")]
    UnknownClient,
}

impl HeraldClaims {
    /// A person's claims from their user attributes.
    pub fn for_user(attributes: &HashMap<String, String>) -> Result<Self, Refused> {
        let role = attributes
            .get(ROLE_ATTRIBUTE)
            .filter(|r| !r.is_empty())
            .ok_or(Refused::NoRole)?;
        let role = Role::parse(role).ok_or(Refused::UnknownRole)?;
        let tenant = attributes.get(TENANT_ATTRIBUTE).filter(|t| !t.is_empty());
        let tenant = match (role, tenant) {
            (Role::PlatformAdmin, None) => None,
            (Role::PlatformAdmin, Some(_)) => return Err(Refused::PlatformAdminWithTenant),
            (_, None) => return Err(Refused::NoTenant),
            (_, Some(t)) => Some(TenantId::parse(t).map_err(|_| Refused::InvalidTenant)?),
        };
        Ok(Self { role, tenant })
    }
}

impl Role {
    /// The role's name in a token's `herald:role` claim (what [`Role::parse`] reads).
    pub fn claim_value(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::TenantAdmin => "tenant_admin",
            Role::EventManager => "event_manager",
            Role::System => "system",
        }
    }
}

/// The app clients tenant systems authenticate as (client credentials), each bound to one
/// tenant and a tenant role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSystems {
    clients: HashMap<String, HeraldClaims>,
}

/// A tenant systems mapping that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant system mapping entry {position}: {reason}")]
pub struct InvalidMapping {
    /// 1-based position of the entry in the list.
    pub position: usize,
    pub reason: &'static str,
}

impl TenantSystems {
    /// Reads `client-id=tenant:role` entries separated by commas (blank entries are skipped, so
    /// an empty list or a trailing comma is fine). A tenant system acts for its tenant, so its
    /// role is `tenant_admin` or `event_manager`; a client may appear once.
    pub fn parse(text: &str) -> Result<Self, InvalidMapping> {
        let mut clients = HashMap::new();
        for (index, entry) in text.split(',').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let invalid = |reason| InvalidMapping {
                position: index + 1,
                reason,
            };
            let (client, binding) = entry
                .split_once('=')
                .ok_or_else(|| invalid("expected client-id=tenant:role"))?;
            let (tenant, role) = binding
                .split_once(':')
                .ok_or_else(|| invalid("expected client-id=tenant:role"))?;
            let client = client.trim();
            if client.is_empty() || !client.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid("the app client id must be letters and digits"));
            }
            let tenant = TenantId::parse(tenant.trim())
                .map_err(|_| invalid("the tenant is not a tenant id"))?;
            let role = match Role::parse(role.trim()) {
                Some(role @ (Role::TenantAdmin | Role::EventManager)) => role,
                _ => return Err(invalid("the role must be tenant_admin or event_manager")),
            };
            let claims = HeraldClaims {
                role,
                tenant: Some(tenant),
            };
            if clients.insert(client.to_owned(), claims).is_some() {
                return Err(invalid("the app client is listed twice"));
            }
        }
        Ok(Self { clients })
    }

    /// The claims of a token issued to this app client with client credentials.
    pub fn for_client(&self, client_id: &str) -> Result<HeraldClaims, Refused> {
        self.clients
            .get(client_id)
            .cloned()
            .ok_or(Refused::UnknownClient)
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_user_gets_the_tenant_and_role_an_administrator_set() {
        let claims = HeraldClaims::for_user(&attributes(&[
            ("sub", "0f1e2d3c-aaaa-bbbb-cccc-123456789abc"),
            ("email", "organiser@acme.example"),
            (TENANT_ATTRIBUTE, "acme-events"),
            (ROLE_ATTRIBUTE, "event_manager"),
        ]))
        .expect("claims");
        assert_eq!(claims.role, Role::EventManager);
        assert_eq!(
            claims.tenant.as_ref().map(TenantId::as_str),
            Some("acme-events")
        );
    }

    #[test]
    fn a_platform_admin_carries_no_tenant() {
        let claims = HeraldClaims::for_user(&attributes(&[(ROLE_ATTRIBUTE, "platform_admin")]))
            .expect("claims");
        assert_eq!(claims.tenant, None);
        assert_eq!(claims.role.claim_value(), "platform_admin");
        assert_eq!(
            HeraldClaims::for_user(&attributes(&[
                (ROLE_ATTRIBUTE, "platform_admin"),
                (TENANT_ATTRIBUTE, "acme-events"),
            ])),
            Err(Refused::PlatformAdminWithTenant)
        );
    }

    #[test]
    fn a_user_without_a_tenant_is_refused() {
        for attrs in [
            attributes(&[(ROLE_ATTRIBUTE, "tenant_admin")]),
            attributes(&[(ROLE_ATTRIBUTE, "tenant_admin"), (TENANT_ATTRIBUTE, "")]),
        ] {
            assert_eq!(HeraldClaims::for_user(&attrs), Err(Refused::NoTenant));
        }
        assert_eq!(
            HeraldClaims::for_user(&attributes(&[
                (ROLE_ATTRIBUTE, "tenant_admin"),
                (TENANT_ATTRIBUTE, "Acme Events"),
            ])),
            Err(Refused::InvalidTenant)
        );
    }

    #[test]
    fn an_unknown_or_missing_role_is_refused() {
        for role in ["admin", "system", "TENANT_ADMIN", " tenant_admin"] {
            assert_eq!(
                HeraldClaims::for_user(&attributes(&[
                    (ROLE_ATTRIBUTE, role),
                    (TENANT_ATTRIBUTE, "acme-events"),
                ])),
                Err(Refused::UnknownRole),
                "{role}"
            );
        }
        assert_eq!(
            HeraldClaims::for_user(&attributes(&[(TENANT_ATTRIBUTE, "acme-events")])),
            Err(Refused::NoRole)
        );
    }

    #[test]
    fn refusals_never_repeat_an_attribute_value() {
        let attrs = attributes(&[
            (ROLE_ATTRIBUTE, "tenant_admin"),
            (TENANT_ATTRIBUTE, "Jane Doe"),
        ]);
        let message = HeraldClaims::for_user(&attrs)
            .expect_err("refused")
            .to_string();
        assert!(!message.contains("Jane"), "{message}");
    }

    #[test]
    fn a_mapped_client_gets_its_tenant_and_role() {
        let systems = TenantSystems::parse(
            "4example5client6id7abcdefgh=acme-events:event_manager, 9other=globex:tenant_admin,",
        )
        .expect("mapping");
        assert_eq!(systems.len(), 2);
        let claims = systems
            .for_client("4example5client6id7abcdefgh")
            .expect("mapped");
        assert_eq!(claims.role, Role::EventManager);
        assert_eq!(
            claims.tenant.as_ref().map(TenantId::as_str),
            Some("acme-events")
        );
        assert_eq!(
            systems.for_client("9other").map(|c| c.role),
            Ok(Role::TenantAdmin)
        );
    }

    #[test]
    fn an_unmapped_client_is_refused() {
        let systems = TenantSystems::parse("known=acme-events:event_manager").expect("mapping");
        assert_eq!(systems.for_client("unknown"), Err(Refused::UnknownClient));
        assert_eq!(systems.for_client(""), Err(Refused::UnknownClient));
        let none = TenantSystems::parse("").expect("empty mapping");
        assert!(none.is_empty());
        assert_eq!(none.for_client("known"), Err(Refused::UnknownClient));
    }

    #[test]
    fn a_malformed_mapping_is_an_error_naming_the_entry() {
        let cases = [
            ("abc", 1),
            ("a=acme", 1),
            ("a=acme:event_manager,b=acme:platform_admin", 2),
            ("a=acme:event_manager,,b=Acme:event_manager", 3),
            ("a=acme:event_manager,a=globex:tenant_admin", 2),
            ("a-b=acme:event_manager", 1),
            ("=acme:event_manager", 1),
        ];
        for (text, position) in cases {
            let error = TenantSystems::parse(text).expect_err(text);
            assert_eq!(error.position, position, "{text}: {error}");
        }
    }
}
