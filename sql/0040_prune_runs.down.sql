DROP FUNCTION ccvec.prune_runs();
DROP FUNCTION ccvec.prunable_runs();
