      *> ---------------------------------------------------------------
      *> ACCTINIT - batch program that creates indexed file ACCOUNTS
      *> for XFER: accounts 000001 to NNNNNN, each with balance 1000 and
      *> no updates yet.
      *>
      *> NNNNNN comes from the environment variable ACCOUNTS_COUNT
      *> (default 10000, at most 999999). The file name comes from the
      *> environment too (ASSIGN TO EXTERNAL): DD_ACCOUNTS, dd_ACCOUNTS
      *> or ACCOUNTS. An existing file is replaced.
      *>
      *> Exit code: 0 when the file was written, 8 otherwise (the file
      *> status is DISPLAYed on stderr).
      *> ---------------------------------------------------------------
       IDENTIFICATION DIVISION.
       PROGRAM-ID. ACCTINIT.

       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT ACCOUNTS ASSIGN TO EXTERNAL ACCOUNTS
               ORGANIZATION IS INDEXED
               ACCESS MODE IS SEQUENTIAL
               RECORD KEY IS ACCT-ID
               FILE STATUS IS WS-FILE-STATUS.

       DATA DIVISION.
       FILE SECTION.
       FD  ACCOUNTS.
       01  ACCT-RECORD.
           05  ACCT-ID             PIC 9(6).
           05  ACCT-BALANCE        PIC S9(11).
           05  ACCT-UPDATES        PIC 9(9).

       WORKING-STORAGE SECTION.
       01  WS-PROGRAM-NAME         PIC X(10) VALUE "ACCTINIT".
       01  WS-FILE-STATUS          PIC XX.
           88  WS-FILE-OK                    VALUE "00".
       01  WS-FAILED-STEP          PIC X(5).
       01  WS-COUNT-TEXT           PIC X(20).
       01  WS-COUNT                PIC 9(7) VALUE 10000.
       01  WS-NEXT                 PIC 9(7).
       01  WS-SHOWN                PIC Z(5)9.

       PROCEDURE DIVISION.
       MAIN-PARA.
           ACCEPT WS-COUNT-TEXT FROM ENVIRONMENT "ACCOUNTS_COUNT"
           IF WS-COUNT-TEXT NOT = SPACES
               IF FUNCTION TEST-NUMVAL(WS-COUNT-TEXT) NOT = 0
                   DISPLAY "ACCTINIT: ACCOUNTS_COUNT must be a number"
                           " from 1 to 999999, not "
                           FUNCTION TRIM(WS-COUNT-TEXT) UPON SYSERR
                   STOP RUN RETURNING 8
               END-IF
               IF FUNCTION NUMVAL(WS-COUNT-TEXT) > 999999
                   MOVE 0 TO WS-COUNT
               ELSE
                   MOVE FUNCTION NUMVAL(WS-COUNT-TEXT) TO WS-COUNT
               END-IF
           END-IF
           IF WS-COUNT = 0
               DISPLAY "ACCTINIT: ACCOUNTS_COUNT must be a number from"
                       " 1 to 999999" UPON SYSERR
               STOP RUN RETURNING 8
           END-IF
           OPEN OUTPUT ACCOUNTS
           IF NOT WS-FILE-OK
               MOVE "OPEN" TO WS-FAILED-STEP
               PERFORM FILE-FAILED
           END-IF
           MOVE 1000 TO ACCT-BALANCE
           MOVE 0 TO ACCT-UPDATES
      *>   A counter of its own: ACCT-ID PIC 9(6) would wrap after 999999.
           PERFORM VARYING WS-NEXT FROM 1 BY 1 UNTIL WS-NEXT > WS-COUNT
               MOVE WS-NEXT TO ACCT-ID
               WRITE ACCT-RECORD
               IF NOT WS-FILE-OK
                   MOVE "WRITE" TO WS-FAILED-STEP
                   PERFORM FILE-FAILED
               END-IF
           END-PERFORM
           CLOSE ACCOUNTS
           IF NOT WS-FILE-OK
               MOVE "CLOSE" TO WS-FAILED-STEP
               PERFORM FILE-FAILED
           END-IF
           MOVE WS-COUNT TO WS-SHOWN
           DISPLAY "ACCTINIT: created ACCOUNTS with "
                   FUNCTION TRIM(WS-SHOWN) " accounts of balance 1000"
           STOP RUN RETURNING 0.

       FILE-FAILED.
           DISPLAY FUNCTION TRIM(WS-PROGRAM-NAME) ": "
                   FUNCTION TRIM(WS-FAILED-STEP) " of file ACCOUNTS"
                   " failed with file status " WS-FILE-STATUS
                   "; check that DD_ACCOUNTS names a writable path"
                   UPON SYSERR
           STOP RUN RETURNING 8.
