-- Commands that must not run twice at once on one database (two `ccvec refresh`, two `ccvec dedup`,
-- two graph writers) take a session advisory lock named after their job: the second one waits,
-- saying for whom, then runs on what the first one left. Loads share the job 'catalog', which a
-- refresh takes alone: any number of loads at once, and scores never from a catalog half loaded.
-- The key is two int4: the class hashtext('ccvec job') and hashtext(job name) (ccvec.ddl_lock
-- uses the one-bigint key space).

CREATE FUNCTION ccvec.job_lock(p_job text, p_wait text DEFAULT NULL, p_shared boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_wait IS NULL THEN
        RETURN CASE WHEN p_shared THEN pg_try_advisory_lock_shared(hashtext('ccvec job'), hashtext(p_job))
                    ELSE pg_try_advisory_lock(hashtext('ccvec job'), hashtext(p_job)) END;
    END IF;
    PERFORM set_config('lock_timeout', p_wait, true);
    BEGIN
        IF p_shared THEN
            PERFORM pg_advisory_lock_shared(hashtext('ccvec job'), hashtext(p_job));
        ELSE
            PERFORM pg_advisory_lock(hashtext('ccvec job'), hashtext(p_job));
        END IF;
    EXCEPTION WHEN lock_not_available THEN
        RETURN false;
    END;
    RETURN true;
END $$;
COMMENT ON FUNCTION ccvec.job_lock(text, text, boolean) IS
    'Take the session advisory lock of job p_job (held until ccvec.job_unlock or the session ends), exclusive or, with p_shared, shared with other sharers: at once or not at all when p_wait is NULL, else waiting at most p_wait (an interval text such as ''10s'', as lock_timeout). Returns whether this session now holds it.';

CREATE FUNCTION ccvec.job_unlock(p_job text, p_shared boolean DEFAULT false) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN p_shared THEN pg_advisory_unlock_shared(hashtext('ccvec job'), hashtext(p_job))
                ELSE pg_advisory_unlock(hashtext('ccvec job'), hashtext(p_job)) END
$$;
COMMENT ON FUNCTION ccvec.job_unlock(text, boolean) IS
    'Release the session advisory lock of job p_job taken by ccvec.job_lock (p_shared: the shared one); returns whether this session held it.';

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
    ORDER BY a.backend_start
$$;
COMMENT ON FUNCTION ccvec.job_holder(text) IS
    'The other sessions holding job p_job''s lock (ccvec.job_lock), oldest first: each one''s server pid, application_name (ccvec sets "ccvec COMMAND [client pid]") and when it connected. For the one line a waiting command prints.';
