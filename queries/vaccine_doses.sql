-- Every dose of every patient with a dose row or a patient row changed at or after the window
-- start. ReqCheck replaces a patient's whole dose history with what one request carries, so the
-- query selects *patients* and returns their full history, ordered by patient so that one
-- patient's doses are never split across requests.
--
-- The patient columns come from a LEFT JOIN: the transform holds back doses whose patient row is
-- missing or would itself be rejected, so ReqCheck never invents a "Not Found" patient.
SELECT i.im_id, i.patno, i.vac_code, i.vac_desc, i.cvx, i.mvx, i.lot_no, i.exp_date,
       i.admin_date, i.history, i.provider, i.dosage, i.site, i.given_by,
       i.vfc_code, i.vfc_desc, i.encounter_id, i.comments, i.updated_at,
       m.patno AS patient_patno, m.lname AS patient_lname, m.fname AS patient_fname,
       m.birth_date AS patient_birth_date
FROM imfile i
LEFT JOIN mpfile m ON m.patno = i.patno
WHERE i.patno IN (
    SELECT patno FROM imfile WHERE updated_at >= ?
    UNION
    SELECT patno FROM mpfile WHERE updated_at >= ?
)
ORDER BY i.patno, i.admin_date, i.im_id
