DROP FUNCTION ccvec.prune_runs(boolean);
DROP FUNCTION ccvec.prunable_runs(boolean);
