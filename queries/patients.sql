-- Patients whose master-file row changed at or after the window start.
-- Every `?` is bound to the window start (clinic local time); see docs/default-mapping.md.
SELECT patno, lname, fname, birth_date, sex,
       addr1, addr2, city, state, zip,
       home_phone, cell_phone, email, race, ethnicity,
       family_no, notes, updated_at
FROM mpfile
WHERE updated_at >= ?
ORDER BY patno
