/*
 * The program's side of ESFH. A program compiled with `-fcallfh=ESFH` reaches ESFH through
 * libcob's cob_extfh_open, cob_extfh_read ... (one per COBOL statement), which build the FCD,
 * call ESFH and copy its results back. esrt compiles programs with those names mapped to the
 * esfh_extfh_* functions below (esfh_program_args: -Dcob_extfh_open=esfh_extfh_open ...): each
 * calls libcob's own and keeps in view the program's cob_file, which libcob never passes to
 * the handler, so that:
 *  - the runtime knows which file an error belongs to (cob_error_file): the program's error
 *    handling reads it to choose a USE procedure, to see whether the file has a FILE STATUS,
 *    and for the message that stops the run unit. libcob 3.1.2 set it after an external
 *    handler returned; 3.2 leaves it unset, and a program dereferences NULL on its first
 *    file error. 3.2 also leaves an error's exception standing after a later success;
 *  - ESFH can give a RELATIVE file's record number back to the program's RELATIVE KEY, as
 *    libcob's own handler does on every version (3.2 copies fcd->relKey back only for some
 *    operations);
 *  - a file with RECORD VARYING ... DEPENDING ON gets its lengths as under libcob's own
 *    handler: a READ sets the DEPENDING ON item and a REWRITE stores the length it holds.
 *    libcob's cob_read and cob_rewrite do both around their handler; the glue of 3.1.2 and
 *    3.2 does neither (it passes the whole record item's size to a REWRITE), and the two
 *    releases' cob_rewrite differ (see rewrite_length).
 * Programs compiled by other means still work with ESFH, with what their libcob gives them.
 */
#include "esfh_internal.h"

typedef int (*esfh_callfh)(unsigned char *opcode, FCD3 *fcd);

static cob_file *g_calling;

cob_file *esfh_calling_file(void)
{
    return g_calling;
}

/* After a statement on f, what libcob's own handler does after every operation (fileio.c,
 * save_status): f is the file of the last I/O statement, and a success clears the exception
 * an earlier statement left, which would otherwise run a USE procedure again. Files of other
 * organizations went through libcob's own handler inside ESFH, which did this itself (and may
 * have raised end of page). */
static void after_statement(cob_file *f)
{
    cob_global *global = cob_get_global_ptr();
    global->cob_error_file = f;
    if ((f->organization == COB_ORG_INDEXED || f->organization == COB_ORG_RELATIVE)
        && f->file_status != NULL && f->file_status[0] == '0')
        global->cob_exception_code = 0;
}

/* Run one libcob call with f in view. */
#define WITH_FILE(f, call)                                  \
    do {                                                    \
        cob_file *outer_ = g_calling;                       \
        g_calling = (f);                                    \
        call;                                               \
        g_calling = outer_;                                 \
        after_statement(f);                                 \
    } while (0)

void esfh_extfh_open(esfh_callfh callfh, cob_file *f, const int mode, const int sharing,
                     cob_field *fnstatus)
{
    WITH_FILE(f, cob_extfh_open(callfh, f, mode, sharing, fnstatus));
}

void esfh_extfh_close(esfh_callfh callfh, cob_file *f, cob_field *fnstatus, const int opt,
                      const int remfil)
{
    WITH_FILE(f, cob_extfh_close(callfh, f, fnstatus, opt, remfil));
}

void esfh_extfh_read(esfh_callfh callfh, cob_file *f, cob_field *key, cob_field *fnstatus,
                     const int read_opts)
{
    WITH_FILE(f, cob_extfh_read(callfh, f, key, fnstatus, read_opts));
}

void esfh_extfh_read_next(esfh_callfh callfh, cob_file *f, cob_field *fnstatus,
                          const int read_opts)
{
    WITH_FILE(f, cob_extfh_read_next(callfh, f, fnstatus, read_opts));
}

/* A READ of f delivered a record of length bytes (status 0x): what libcob's cob_read does
 * after its own handler's successful read. */
void esfh_program_record_read(size_t length)
{
    cob_file *f = g_calling;
    if (f == NULL)
        return;
    if (f->record != NULL)
        f->record->size = length;
    if (f->variable_record != NULL)
        cob_set_int(f->variable_record, (int)length);
}

/* The length a REWRITE of rec gives the record, as libcob's cob_rewrite works it out for its
 * own handler (the glue would pass rec's size). The handler answers 44 for a length the file
 * cannot hold, after its earlier checks (49, 43), in cob_rewrite's order. */
static size_t rewrite_length(cob_file *f, cob_field *rec)
{
    size_t length;
    if (f->variable_record == NULL) {
#if ESFH_LIBCOB_AT_LEAST(3, 2)
        return rec->size;
#else
        /* 3.1 leaves the record's size as the last READ or WRITE of the file set it (an
         * INDEXED file stores that many bytes of the record area, whatever rec's size). */
        return f->record != NULL ? f->record->size : rec->size;
#endif
    }
    /* The DEPENDING ON item; a negative value, made unsigned, is huge. */
    length = (size_t)cob_get_int(f->variable_record);
#if ESFH_LIBCOB_AT_LEAST(3, 2)
    /* 3.2 checks the value against the file's sizes before it cuts it to rec's size. */
    if (length < f->record_min || length > f->record_max)
        return f->record_max + 1;       /* a length the handler refuses */
#endif
    return length > rec->size ? rec->size : length;
}

void esfh_extfh_rewrite(esfh_callfh callfh, cob_file *f, cob_field *rec, const int opt,
                        cob_field *fnstatus)
{
    cob_field sized = *rec;
    /* Files of other organizations go through libcob's own EXTFH, which calls cob_rewrite
     * with the glue's length: theirs must stay rec's size. */
    if (f->organization == COB_ORG_INDEXED || f->organization == COB_ORG_RELATIVE) {
        sized.size = rewrite_length(f, rec);
        if (f->variable_record != NULL && f->record != NULL)
            f->record->size = sized.size;   /* as cob_rewrite leaves it */
    }
    WITH_FILE(f, cob_extfh_rewrite(callfh, f, &sized, opt, fnstatus));
}

void esfh_extfh_delete(esfh_callfh callfh, cob_file *f, cob_field *fnstatus)
{
    WITH_FILE(f, cob_extfh_delete(callfh, f, fnstatus));
}

void esfh_extfh_start(esfh_callfh callfh, cob_file *f, const int cond, cob_field *key,
                      cob_field *keysize, cob_field *fnstatus)
{
    WITH_FILE(f, cob_extfh_start(callfh, f, cond, key, keysize, fnstatus));
}

void esfh_extfh_write(esfh_callfh callfh, cob_file *f, cob_field *rec, const int opt,
                      cob_field *fnstatus, const unsigned int check_eop)
{
    WITH_FILE(f, cob_extfh_write(callfh, f, rec, opt, fnstatus, check_eop));
}
