-- Every member of every near-duplicate group, for programs (`ccvec dedup --report --format
-- csv|json`): a script that decides what to delete needs the members, where each one lives and
-- which one is canonical, not only the group sizes.

CREATE FUNCTION ccvec.duplicate_listing()
RETURNS TABLE (group_id uuid, size bigint, identifier uuid, canonical boolean, distance integer,
               similarity real, matched_by text, location text, title text)
LANGUAGE sql STABLE AS $$
    SELECT d.group_id, count(*) OVER (PARTITION BY d.group_id) AS size, d.identifier, d.canonical,
           d.distance, d.similarity, d.matched_by, c.url, c.title
    FROM ccvec.report_duplicates(NULL) d
    LEFT JOIN ccvec.catalog c ON c.identifier = d.identifier
    ORDER BY size DESC, d.group_id, d.canonical DESC, d.distance, d.identifier
$$;
COMMENT ON FUNCTION ccvec.duplicate_listing() IS
    'One row per member of every near-duplicate group of two or more images, largest groups first and the canonical image first in each: its pHash distance and embedding similarity to the canonical, what matched it, and its location (path or URL) and title from the catalog.';
