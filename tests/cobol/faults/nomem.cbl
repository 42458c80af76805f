      * NOMEM: writes a 30,000-byte record to an INDEXED file of records
      * of up to 40,000 bytes and reads it back. Run with allocations of
      * those sizes failing (tests/cobol/faults/failing_alloc.c), ESFH
      * must answer each operation that cannot get its buffer with a file
      * status, not crash on a null pointer.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. NOMEM.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT F ASSIGN TO "NOMEMFILE"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY F-KEY
               FILE STATUS FS.
       DATA DIVISION.
       FILE SECTION.
       FD F RECORD VARYING 10 TO 40000 DEPENDING ON F-LENGTH.
       01 F-REC.
          05 F-KEY  PIC X(8).
          05 F-DATA PIC X(39992).
       WORKING-STORAGE SECTION.
       01 FS        PIC XX.
       01 F-LENGTH  PIC 9(5).
       PROCEDURE DIVISION.
           OPEN OUTPUT F
           DISPLAY "open output " FS
           MOVE "K1" TO F-KEY
           MOVE ALL "D" TO F-DATA
           MOVE 30000 TO F-LENGTH
           WRITE F-REC
           DISPLAY "write " FS
           CLOSE F
           DISPLAY "close " FS
           OPEN INPUT F
           DISPLAY "open input " FS
           MOVE 0 TO F-LENGTH
           READ F NEXT
           DISPLAY "read " FS " " F-LENGTH
           CLOSE F
           DISPLAY "close " FS
           STOP RUN.
