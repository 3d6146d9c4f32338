//! Who is calling: the identity API Gateway's JWT authorizer vouched for. The tenant comes from
//! here and nowhere else, and the role decides which layer of configuration a caller may change.

use serde::{Deserialize, Serialize};

use super::ids::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Herald's own operators: the platform compliance templates.
    PlatformAdmin,
    /// An organisation's administrator: tenant defaults and every event of the tenant.
    TenantAdmin,
    /// Configures events, reads the tenant's defaults, cannot change them.
    EventManager,
    /// Herald itself (dispatch, receipts): only ever an audit actor, never a caller.
    System,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "platform_admin" => Some(Role::PlatformAdmin),
            "tenant_admin" => Some(Role::TenantAdmin),
            "event_manager" => Some(Role::EventManager),
            _ => None,
        }
    }
}

/// The authenticated caller of an API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The subject claim: a stable id of the person or system, recorded in the audit log.
    pub subject: String,
    pub role: Role,
    /// Platform admins act for the platform and carry no tenant.
    pub tenant: Option<TenantId>,
}

/// What a caller is about to do, for the role check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadPlatform,
    WritePlatform,
    ReadTenant,
    WriteTenant,
    ReadEvent,
    WriteEvent,
}

/// Why a caller may not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this operation needs a tenant identity")]
    NoTenant,
    #[error("role {role:?} may not perform this operation")]
    Role { role: Role },
    /// Four eyes: the author of a template version may not approve it.
    #[error("a template version is approved by someone other than its author")]
    OwnVersion,
}

impl Denied {
    pub fn code(&self) -> super::ErrorCode {
        match self {
            Denied::OwnVersion => super::ErrorCode::FourEyes,
            Denied::NoTenant | Denied::Role { .. } => super::ErrorCode::Forbidden,
        }
    }
}

impl Caller {
    /// The tenant the caller acts for, when the action is allowed for its role.
    pub fn authorize(&self, action: Action) -> Result<Option<&TenantId>, Denied> {
        use Action::*;
        use Role::*;
        let allowed = match (self.role, action) {
            (PlatformAdmin, ReadPlatform | WritePlatform) => true,
            (PlatformAdmin, _) => false,
            (TenantAdmin, WritePlatform) => false,
            (TenantAdmin, _) => true,
            (EventManager, ReadPlatform | ReadTenant | ReadEvent | WriteEvent) => true,
            (EventManager, WritePlatform | WriteTenant) => false,
            (System, _) => false,
        };
        if !allowed {
            return Err(Denied::Role { role: self.role });
        }
        match action {
            ReadPlatform | WritePlatform => Ok(self.tenant.as_ref()),
            _ => self.tenant.as_ref().map(Some).ok_or(Denied::NoTenant),
        }
    }

    /// Like [`Caller::authorize`] for tenant-scoped actions, returning the tenant itself.
    pub fn tenant_for(&self, action: Action) -> Result<&TenantId, Denied> {
        self.authorize(action)?.ok_or(Denied::NoTenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> Caller {
        Caller {
            subject: "u1".into(),
            role,
            tenant: TenantId::parse("acme").ok(),
        }
    }

    #[test]
    fn event_managers_cannot_change_tenant_defaults() {
        let c = caller(Role::EventManager);
        assert!(c.tenant_for(Action::WriteEvent).is_ok());
        assert!(c.tenant_for(Action::ReadTenant).is_ok());
        assert_eq!(
            c.tenant_for(Action::WriteTenant),
            Err(Denied::Role {
                role: Role::EventManager
            })
        );
        assert!(c.authorize(Action::WritePlatform).is_err());
    }

    #[test]
    fn only_platform_admins_write_global_templates() {
        assert!(
            caller(Role::PlatformAdmin)
                .authorize(Action::WritePlatform)
                .is_ok()
        );
        assert!(
            caller(Role::TenantAdmin)
                .authorize(Action::WritePlatform)
                .is_err()
        );
        assert!(
            caller(Role::PlatformAdmin)
                .authorize(Action::WriteTenant)
                .is_err()
        );
    }

    #[test]
    fn tenant_actions_need_a_tenant() {
        let c = Caller {
            subject: "u".into(),
            role: Role::TenantAdmin,
            tenant: None,
        };
        assert_eq!(c.tenant_for(Action::ReadTenant), Err(Denied::NoTenant));
    }
}
