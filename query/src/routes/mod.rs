//! One module per resource of the API.

pub mod health;
pub mod histogram;
pub mod replay;
pub mod servermap;
pub mod services;
pub mod traces;
pub mod xlog;
