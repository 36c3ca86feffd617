//! End-to-end tests: they run the real `termtrail` binary, each in its own
//! temporary home and store, so they run in parallel.

mod abuse;
mod access;
mod attach;
mod audit;
mod auth;
mod auth_iam;
mod cli;
mod command;
mod conformance;
mod faults;
mod grep;
mod html;
mod interactive;
mod keys;
mod limits;
mod names;
mod netfaults;
mod peers;
mod play;
mod player;
mod policy;
mod proxy;
mod readers;
mod rec;
mod s3;
mod samples;
mod secrets;
mod serve;
mod serve_sdk;
mod tls;
mod util;
mod vectors;
mod verify_export;
mod wire;
