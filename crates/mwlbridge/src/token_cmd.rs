//! `mwlbridge token create | revoke | list`: the admin interface's API tokens.

use std::path::Path;

use anyhow::anyhow;
use jiff::Timestamp;
use worklist_store::TokenRole;

use crate::cli::{RoleArg, TokenAction};
use crate::failure::Failure;
use crate::load::{config_only, open_store};

/// Runs one `token` action.
pub async fn run(action: TokenAction) -> Result<(), Failure> {
    match action {
        TokenAction::Create { config, name, role } => {
            let store = store(&config.config)?;
            let role = match role {
                RoleArg::Read => TokenRole::Read,
                RoleArg::Write => TokenRole::Write,
            };
            let created = tokio::task::spawn_blocking(move || {
                admin_http::tokens::create_token(&store, &name, role, Timestamp::now())
            })
            .await
            .map_err(|e| Failure::Runtime(anyhow!("token creation failed: {e}")))?
            .map_err(|e| match e {
                admin_http::tokens::TokenCreateError::BadName(_)
                | admin_http::tokens::TokenCreateError::Store(
                    worklist_store::TokenStoreError::NameTaken(_),
                ) => Failure::Usage(e.into()),
                other => Failure::Runtime(other.into()),
            })?;
            tracing::info!(
                token_name = %created.record.name,
                role = created.record.role.as_str(),
                "API token created"
            );
            println!("{}", created.token);
            eprintln!(
                "Token {:?} ({}) created. It is shown only now: store it safely. \
                 Use it as 'Authorization: Bearer <token>' or on the status page's sign-in.",
                created.record.name,
                created.record.role.as_str()
            );
            Ok(())
        }
        TokenAction::Revoke { config, name } => {
            let store = store(&config.config)?;
            let n = name.clone();
            let revoked = store
                .run(move |s| s.revoke_token(&n, Timestamp::now()))
                .await
                .map_err(|e| Failure::Runtime(e.into()))?;
            if revoked {
                tracing::info!(token_name = %name, "API token revoked");
                println!("token {name:?} revoked");
                Ok(())
            } else {
                Err(Failure::Usage(anyhow!(
                    "no active token is called {name:?} ('mwlbridge token list' shows them)"
                )))
            }
        }
        TokenAction::List { config } => {
            let store = store(&config.config)?;
            let tokens = store
                .run(|s| s.list_tokens())
                .await
                .map_err(|e| Failure::Runtime(e.into()))?;
            if tokens.is_empty() {
                println!("no tokens (create one with 'mwlbridge token create')");
            }
            for t in tokens {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".to_string(),
                };
                let used = t
                    .last_used_at
                    .map_or_else(|| "never used".to_string(), |u| format!("last used {u}"));
                println!(
                    "{:<24} {:<5} created {}  {used}  {state}",
                    t.name,
                    t.role.as_str(),
                    t.created_at
                );
            }
            Ok(())
        }
    }
}

/// The configured store, from the config file alone (tokens need no data source).
fn store(path: &Path) -> Result<worklist_store::Store, Failure> {
    open_store(&config_only(path)?)
}
