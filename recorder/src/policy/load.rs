//! Loading a [`Policy`]: reading the `.cedar` file, naming its policies by
//! `@id`, parsing the schema (human syntax), checking it describes
//! termtrail's requests and validating the policies against it (strict
//! mode), with every Cedar diagnostic turned into `file:line:col: message`.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use cedar_policy as cedar;
use miette::Diagnostic;

use super::error::{Listing, PolicyError, Problem};
use super::{Policy, entities};

/// Cedar's own id for the Nth policy or template of a file.
const CEDAR_ID_PREFIX: &str = "policy";

impl Policy {
    /// Loads the Cedar policies in `policy`, validated against the schema
    /// in `schema` (Cedar's human schema syntax) when given.
    ///
    /// Each policy's id is its `@id("…")` annotation, else Cedar's own
    /// (`policy0`, `policy1`, … in file order). Errors name the file and,
    /// where Cedar knows it, the line and column: syntax errors, templates
    /// (not supported), two policies with one id, a schema that does not
    /// parse or lacks part of termtrail's model, policies that do not
    /// validate (strict mode).
    pub fn load(policy: &Path, schema: Option<&Path>) -> Result<Policy, PolicyError> {
        let src = read(policy)?;
        let (set, ids) = parse_policies(policy, &src)?;
        let Some(schema_path) = schema else {
            return Ok(Policy {
                set,
                ids,
                schema: None,
                actions: cedar::Entities::empty(),
                authorizer: cedar::Authorizer::new(),
                warnings: Vec::new(),
            });
        };
        let schema_src = read(schema_path)?;
        let (schema, schema_warnings) = match cedar::Schema::from_cedarschema_str(&schema_src) {
            Ok((schema, warnings)) => (schema, warnings.collect::<Vec<_>>()),
            Err(e) => {
                return Err(PolicyError::Schema {
                    path: schema_path.to_path_buf(),
                    problems: problems(&e, &schema_src),
                });
            }
        };
        let model = |reason: String| PolicyError::Model {
            path: schema_path.to_path_buf(),
            reason,
        };
        let actions = schema.action_entities().map_err(|e| model(e.to_string()))?;
        entities::check_model(&schema, &actions).map_err(|e| model(e.to_string()))?;
        let validator = cedar::Validator::new(schema.clone());
        let result = validator.validate(&set, cedar::ValidationMode::Strict);
        let mut errors: Vec<Problem> = Vec::new();
        for problem in result.validation_errors().flat_map(|e| problems(e, &src)) {
            // Cedar reports one error per action a policy applies to.
            if !errors.contains(&problem) {
                errors.push(problem);
            }
        }
        if !errors.is_empty() {
            return Err(PolicyError::Invalid {
                path: policy.to_path_buf(),
                problems: errors,
            });
        }
        let mut warnings: Vec<String> = schema_warnings
            .iter()
            .map(|w| listing(schema_path, &problems(w, &schema_src)))
            .collect();
        warnings.extend(
            result
                .validation_warnings()
                .map(|w| listing(policy, &problems(w, &src))),
        );
        Ok(Policy {
            set,
            ids,
            schema: Some(schema),
            actions,
            authorizer: cedar::Authorizer::new(),
            warnings,
        })
    }
}

fn read(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn listing(path: &Path, problems: &[Problem]) -> String {
    Listing { path, problems }.to_string()
}

/// Parses the policy file and renames its policies by `@id`; returns the
/// set and the ids in file order.
fn parse_policies(path: &Path, src: &str) -> Result<(cedar::PolicySet, Vec<String>), PolicyError> {
    let parsed = cedar::PolicySet::from_str(src).map_err(|e| PolicyError::Syntax {
        path: path.to_path_buf(),
        problems: e.iter().flat_map(|e| problems(e, src)).collect(),
    })?;
    let unsupported = |problems: Vec<Problem>| PolicyError::Unsupported {
        path: path.to_path_buf(),
        problems,
    };
    let places = Places::new(src, &parsed);
    let templates: Vec<Problem> = parsed
        .templates()
        .map(|t| {
            places.problem(
                t.id(),
                "templates (?principal, ?resource) are not supported: name the principal or resource"
                    .to_string(),
            )
        })
        .collect();
    if !templates.is_empty() {
        return Err(unsupported(templates));
    }
    let mut policies: Vec<&cedar::Policy> = parsed.policies().collect();
    policies.sort_by_key(|p| places.index_of(p.id()));
    let mut first_line: HashMap<String, Problem> = HashMap::new();
    let mut renamed = Vec::with_capacity(policies.len());
    let mut ids = Vec::with_capacity(policies.len());
    let mut duplicates = Vec::new();
    for p in policies {
        let id = p
            .annotation("id")
            .unwrap_or(p.id().to_string().as_str())
            .to_string();
        let here = places.problem(p.id(), String::new());
        if let Some(first) = first_line.get(&id) {
            let line = first.at.map_or(0, |(line, _)| line);
            duplicates.push(Problem {
                message: format!("a second policy with id {id:?} (the first is at line {line})"),
                ..here
            });
            continue;
        }
        first_line.insert(id.clone(), here);
        renamed.push(p.new_id(cedar::PolicyId::new(&id)));
        ids.push(id);
    }
    if !duplicates.is_empty() {
        return Err(unsupported(duplicates));
    }
    let set = cedar::PolicySet::from_policies(renamed).map_err(|e| {
        // Ids were made unique above; report rather than panic regardless.
        unsupported(vec![Problem::whole_file(e.to_string())])
    })?;
    Ok((set, ids))
}

/// Where each policy and template of a parsed file starts: Cedar numbers
/// them `policy0`, `policy1`, … in file order and keeps each one's text, so
/// searching the texts in that order from a moving cursor finds them.
struct Places<'a> {
    src: &'a str,
    offsets: HashMap<String, (usize, usize)>,
}

impl<'a> Places<'a> {
    fn new(src: &'a str, set: &cedar::PolicySet) -> Places<'a> {
        let mut texts: Vec<(usize, String, String)> = set
            .policies()
            .map(|p| (p.id().to_string(), p.to_cedar().unwrap_or_default()))
            .chain(set.templates().map(|t| (t.id().to_string(), t.to_cedar())))
            .map(|(id, text)| (cedar_index(&id), id, text))
            .collect();
        texts.sort();
        let mut cursor = 0;
        let mut offsets = HashMap::new();
        for (index, id, text) in texts {
            let found = src[cursor..]
                .find(text.as_str())
                .filter(|_| !text.is_empty());
            let at = match found {
                Some(i) => {
                    cursor += i + text.len();
                    cursor - text.len()
                }
                None => cursor,
            };
            offsets.insert(id, (index, at));
        }
        Places { src, offsets }
    }

    fn index_of(&self, id: &cedar::PolicyId) -> usize {
        self.offsets
            .get(&id.to_string())
            .map_or(usize::MAX, |(index, _)| *index)
    }

    fn problem(&self, id: &cedar::PolicyId, message: String) -> Problem {
        match self.offsets.get(&id.to_string()) {
            Some((_, at)) => Problem::at_offset(self.src, *at, message),
            None => Problem::whole_file(message),
        }
    }
}

/// N of Cedar's `policyN` (`usize::MAX` for any other id).
fn cedar_index(id: &str) -> usize {
    id.strip_prefix(CEDAR_ID_PREFIX)
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// One problem per labelled place of a Cedar diagnostic (and of the
/// diagnostics related to it), placed in `src`; one without a place when
/// Cedar gives none.
fn problems(diag: &dyn Diagnostic, src: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    collect(diag, src, &mut out);
    out
}

fn collect(diag: &dyn Diagnostic, src: &str, out: &mut Vec<Problem>) {
    let mut message = diag.to_string();
    if let Some(help) = diag.help() {
        message = format!("{message} ({help})");
    }
    let label = diag.labels().and_then(|mut l| l.next());
    let related: Vec<&dyn Diagnostic> = diag.related().map(|r| r.collect()).unwrap_or_default();
    match label {
        Some(label) => {
            if let Some(text) = label.label().filter(|t| !message.contains(t)) {
                message = format!("{message}: {text}");
            }
            out.push(Problem::at_offset(src, label.offset(), message));
        }
        None if related.is_empty() => out.push(Problem::whole_file(message)),
        None => {}
    }
    for r in related {
        collect(r, src, out);
    }
}
