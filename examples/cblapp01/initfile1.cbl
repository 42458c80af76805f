      *> ---------------------------------------------------------------
      *> INITFILE1 - batch program that creates indexed file APPFILE01
      *> for CBLAPP01, holding one record: key spaces, counter 0.
      *>
      *> The file name comes from the environment (ASSIGN TO EXTERNAL):
      *> DD_APPFILE01, dd_APPFILE01 or APPFILE01. An existing file is
      *> replaced, so the counter starts again at 0.
      *>
      *> Exit code: 0 when the file was written, 8 otherwise (the file
      *> status is DISPLAYed on stderr).
      *> ---------------------------------------------------------------
       IDENTIFICATION DIVISION.
       PROGRAM-ID. INITFILE1.

       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT APPFILE ASSIGN TO EXTERNAL APPFILE01
               ORGANIZATION IS INDEXED
               ACCESS MODE IS RANDOM
               RECORD KEY IS RKEY
               FILE STATUS IS WS-FILE-STATUS.

       DATA DIVISION.
       FILE SECTION.
       FD  APPFILE.
       01  AF-RECORD.
           05  RKEY                PIC X(6).
           05  AF-COUNTER          PIC 9(10).

       WORKING-STORAGE SECTION.
       01  WS-PROGRAM-NAME         PIC X(10) VALUE "INITFILE1".
       01  WS-FILE-NAME            PIC X(9)  VALUE "APPFILE01".
       01  WS-FILE-STATUS          PIC XX.
           88  WS-FILE-OK                    VALUE "00".
       01  WS-FAILED-STEP          PIC X(5).

       PROCEDURE DIVISION.
       MAIN-PARA.
           OPEN OUTPUT APPFILE
           IF NOT WS-FILE-OK
               MOVE "OPEN" TO WS-FAILED-STEP
               PERFORM FILE-FAILED
           END-IF
           MOVE SPACES TO RKEY
           MOVE 0 TO AF-COUNTER
           WRITE AF-RECORD
           IF NOT WS-FILE-OK
               MOVE "WRITE" TO WS-FAILED-STEP
               PERFORM FILE-FAILED
           END-IF
           CLOSE APPFILE
           IF NOT WS-FILE-OK
               MOVE "CLOSE" TO WS-FAILED-STEP
               PERFORM FILE-FAILED
           END-IF
           DISPLAY FUNCTION TRIM(WS-PROGRAM-NAME) ": created "
                   WS-FILE-NAME " with one record (key spaces,"
                   " counter 0)"
           STOP RUN RETURNING 0.

       FILE-FAILED.
           DISPLAY FUNCTION TRIM(WS-PROGRAM-NAME) ": "
                   FUNCTION TRIM(WS-FAILED-STEP) " of file "
                   WS-FILE-NAME " failed with file status "
                   WS-FILE-STATUS "; check that DD_APPFILE01 names a"
                   " writable path" UPON SYSERR
           STOP RUN RETURNING 8.
