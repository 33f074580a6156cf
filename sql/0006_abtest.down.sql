DROP VIEW IF EXISTS ccvec.ab_alternate_signal;
DROP VIEW IF EXISTS ccvec.ab_outcome;
DROP TABLE IF EXISTS ccvec.ab_event;
DROP FUNCTION IF EXISTS ccvec.substitute(text, text, text, uuid[]);
DROP TABLE IF EXISTS ccvec.ab_served;
DROP MATERIALIZED VIEW IF EXISTS ccvec.cluster_mate;
DROP FUNCTION IF EXISTS ccvec.assign_arm(text, text);
DROP FUNCTION IF EXISTS ccvec.unit_hash(text);
DROP TABLE IF EXISTS ccvec.experiment;
