-- Commands that must not run twice at once on one database (two `ccvec refresh`, two `ccvec dedup`,
-- two graph writers) take a session advisory lock named after their job: the second one waits,
-- saying for whom, then runs on what the first one left. The key is two int4: the class
-- hashtext('ccvec job') and hashtext(job name) (ccvec.ddl_lock uses the one-bigint key space).

CREATE FUNCTION ccvec.job_lock(p_job text, p_wait text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_wait IS NULL THEN
        RETURN pg_try_advisory_lock(hashtext('ccvec job'), hashtext(p_job));
    END IF;
    PERFORM set_config('lock_timeout', p_wait, true);
    BEGIN
        PERFORM pg_advisory_lock(hashtext('ccvec job'), hashtext(p_job));
    EXCEPTION WHEN lock_not_available THEN
        RETURN false;
    END;
    RETURN true;
END $$;
COMMENT ON FUNCTION ccvec.job_lock(text, text) IS
    'Take the session advisory lock of job p_job (held until ccvec.job_unlock or the session ends): at once or not at all when p_wait is NULL, else waiting at most p_wait (an interval text such as ''10s'', as lock_timeout). Returns whether this session now holds it.';

CREATE FUNCTION ccvec.job_unlock(p_job text) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_unlock(hashtext('ccvec job'), hashtext(p_job))
$$;
COMMENT ON FUNCTION ccvec.job_unlock(text) IS
    'Release the session advisory lock of job p_job taken by ccvec.job_lock; returns whether this session held it.';

CREATE FUNCTION ccvec.job_holder(p_job text)
RETURNS TABLE (pid integer, application text, since timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT l.pid, a.application_name, a.backend_start
    FROM pg_locks l
    LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = hashtext('ccvec job')::oid AND l.objid = hashtext(p_job)::oid
      AND l.pid <> pg_backend_pid()
$$;
COMMENT ON FUNCTION ccvec.job_holder(text) IS
    'The other session holding job p_job''s lock (ccvec.job_lock), if any: its server pid, application_name (ccvec sets "ccvec COMMAND [client pid]") and when it connected. For the one line a waiting command prints.';
