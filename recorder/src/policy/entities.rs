//! A termtrail [`Request`] in Cedar's terms: the request (principal,
//! action, resource, context) and the entities it is judged over (the user
//! with its groups as parents, the groups, the runtime with its
//! attributes, the schema's actions).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy as cedar;

use super::{Action, Policy, Request};

/// Cedar entity type names, parsed once.
struct Types {
    user: cedar::EntityTypeName,
    group: cedar::EntityTypeName,
    runtime: cedar::EntityTypeName,
    action: cedar::EntityTypeName,
}

static TYPES: LazyLock<Types> = LazyLock::new(|| {
    let name = |s: &str| {
        cedar::EntityTypeName::from_str(s).expect("termtrail's entity type names are valid Cedar")
    };
    Types {
        user: name("User"),
        group: name("Group"),
        runtime: name("Runtime"),
        action: name("Action"),
    }
});

fn uid(ty: &cedar::EntityTypeName, id: &str) -> cedar::EntityUid {
    cedar::EntityUid::from_type_name_and_id(ty.clone(), cedar::EntityId::new(id))
}

/// The Cedar uid of an action.
pub(super) fn action_uid(action: Action) -> cedar::EntityUid {
    uid(&TYPES.action, action.as_str())
}

/// A termtrail request Cedar (or the schema) does not accept: which part,
/// for which action, and Cedar's error.
#[derive(Debug, thiserror::Error)]
#[error("{}{what}: {source}", action.map(|a| format!("action {a}: ")).unwrap_or_default())]
pub struct ModelError {
    /// The part refused (`the request`, `the context`, …).
    pub what: &'static str,
    /// The action being checked at load, if any.
    pub action: Option<Action>,
    /// Cedar's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl ModelError {
    fn new(what: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> ModelError {
        ModelError {
            what,
            action: None,
            source: Box::new(e),
        }
    }

    fn for_action(mut self, action: Action) -> ModelError {
        self.action = Some(action);
        self
    }
}

/// `request` as a Cedar request and the entities to judge it over,
/// checked against `schema` when one is given (at load time: see
/// [`check_model`]).
fn translate(
    request: &Request<'_>,
    base: &cedar::Entities,
    schema: Option<&cedar::Schema>,
) -> Result<(cedar::Request, cedar::Entities), ModelError> {
    let principal = uid(&TYPES.user, &request.identity.principal);
    let groups: HashSet<cedar::EntityUid> = request
        .identity
        .groups
        .iter()
        .map(|g| uid(&TYPES.group, g))
        .collect();
    let resource = uid(&TYPES.runtime, request.runtime);
    let attrs = HashMap::from([
        (
            "environment".to_string(),
            cedar::RestrictedExpression::new_string(
                request.environment.unwrap_or_default().to_string(),
            ),
        ),
        (
            "session".to_string(),
            cedar::RestrictedExpression::new_string(
                request.session.unwrap_or_default().to_string(),
            ),
        ),
    ]);
    let mut entities: Vec<cedar::Entity> = groups
        .iter()
        .map(|g| cedar::Entity::with_uid(g.clone()))
        .collect();
    entities.push(cedar::Entity::new_no_attrs(principal.clone(), groups));
    entities.push(
        cedar::Entity::new(resource.clone(), attrs, HashSet::new())
            .map_err(|e| ModelError::new("the runtime entity", e))?,
    );
    let entities = base
        .clone()
        .add_entities(entities, schema)
        .map_err(|e| ModelError::new("the entities", e))?;
    let context = context(request)?;
    let request = cedar::Request::new(
        principal,
        action_uid(request.action),
        resource,
        context,
        schema,
    )
    .map_err(|e| ModelError::new("the request", e))?;
    Ok((request, entities))
}

/// The context record: `time`, and `source_ip` and `break_glass` when the
/// request has them.
fn context(request: &Request<'_>) -> Result<cedar::Context, ModelError> {
    let time = i64::try_from(request.time).unwrap_or(i64::MAX);
    let mut pairs = vec![(
        "time".to_string(),
        cedar::RestrictedExpression::new_long(time),
    )];
    if let Some(ip) = request.source_ip {
        pairs.push((
            "source_ip".to_string(),
            cedar::RestrictedExpression::new_ip(ip.to_string()),
        ));
    }
    if let Some(reason) = request.break_glass {
        let record = cedar::RestrictedExpression::new_record([(
            "reason".to_string(),
            cedar::RestrictedExpression::new_string(reason.to_string()),
        )])
        .map_err(|e| ModelError::new("the break_glass record", e))?;
        pairs.push(("break_glass".to_string(), record));
    }
    cedar::Context::from_pairs(pairs).map_err(|e| ModelError::new("the context", e))
}

/// The request and entities for [`Policy::decide`]. The schema is not
/// consulted again: [`check_model`] made sure at load that it accepts
/// every shape of request termtrail builds.
pub(super) fn build(
    policy: &Policy,
    request: &Request<'_>,
) -> Result<(cedar::Request, cedar::Entities), ModelError> {
    translate(request, &policy.actions, None)
}

/// Checks that `schema` accepts termtrail's requests: every action, with
/// and without the optional context attributes, a user in a group, a
/// runtime with its attributes. The first refusal is the error.
pub(super) fn check_model(
    schema: &cedar::Schema,
    actions: &cedar::Entities,
) -> Result<(), ModelError> {
    let identity = crate::auth::Identity {
        groups: vec!["group".to_string()],
        ..crate::auth::Identity::unauthenticated("user")
    };
    for action in Action::ALL {
        let mut full = Request::new(&identity, action, "runtime", 0);
        full.environment = Some("environment");
        full.session = Some("session");
        full.break_glass = Some("reason");
        full.source_ip = Some(std::net::IpAddr::from([127, 0, 0, 1]));
        let bare = Request::new(&identity, action, "runtime", 0);
        for request in [full, bare] {
            translate(&request, actions, Some(schema)).map_err(|e| e.for_action(action))?;
        }
    }
    Ok(())
}
