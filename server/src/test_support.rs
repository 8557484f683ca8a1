//! Registrations for the crate's unit tests.

use gatehouse_crds::admin::ClientRegistration;

/// A registration of `id` authenticating with `method` (`none`, `client_secret_basic`, ...), for
/// `grant_types`, allowed `scopes`.
pub fn registration(id: &str, method: &str, grant_types: &[&str], scopes: &[&str]) -> ClientRegistration {
    serde_json::from_value(serde_json::json!({
        "clientId": id,
        "tokenEndpointAuthMethod": method,
        "effective": {
            "grantTypes": grant_types, "scopes": scopes, "accessTokenTtlSeconds": 600,
            "refreshTokenTtlSeconds": 3600, "authorizationCodeTtlSeconds": 60,
            "accessTokenFormat": "jwt", "requirePKCE": true, "allowPlainPKCE": false,
            "refreshTokenRotation": true, "firstParty": false,
        },
    }))
    .expect("a valid registration")
}
