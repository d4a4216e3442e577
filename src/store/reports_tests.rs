//! The report scripts on a real `redis-server`: exactly once per ticket and per rating,
//! and agent state time split across hours.
